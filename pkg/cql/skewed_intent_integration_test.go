package cql_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
)

// errCrash is what a writer that "dies" at a step panics with.
type errCrash struct{}

// TestRecoveryReachesIntentsOfLateClockWriters: an intent's bucket comes from its writer's
// clock. A writer 20 s behind the sweeper writes its intent into a minute bucket the sweeper has
// already checkpointed past (the checkpoint trails by the grace period, 5 s), commits, and dies
// before writing the outbox. Recovery must still find the intent and write the outbox rows
// (before issue 10 it never read that bucket again: committed events, no outbox row).
func TestRecoveryReachesIntentsOfLateClockWriters(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const grace, skew = 5 * time.Second, 20 * time.Second
	sweeper := cql.NewEventStore(s, codec.NewRegistry(), cql.Options{})

	// Between 7 s and 17 s past a minute, Bucket(now − grace) is this minute and
	// Bucket(now − skew) the previous one.
	for sec := time.Now().Second(); sec < 7 || sec >= 17; sec = time.Now().Second() {
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := sweeper.RecoverIntents(ctx, grace); err != nil { // checkpoint: this minute
		t.Fatal(err)
	}

	// The writer dies after its commit, before the outbox.
	id := uuid.NewString()
	ids := crashAt(t, s, cql.Options{Now: func() time.Time { return time.Now().Add(-skew) }}, id, cql.StepCommitted)

	if _, err := sweeper.RecoverIntents(ctx, grace); err != nil {
		t.Fatal(err)
	}
	events := checkNoLossNoPhantom(t, s)
	if events[eventKey{id, 1}] != ids[0] || events[eventKey{id, 2}] != ids[1] {
		t.Errorf("the late writer's events are not in event_store: %v", events)
	}
}
