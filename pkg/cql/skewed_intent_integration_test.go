package cql_test

import (
	"context"
	"sync/atomic"
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
// clock. A writer 20 s behind the sweeper writes its intent into a minute bucket, and at a time,
// the sweeper has already read past (its passes read an open bucket on from where the last one
// stopped: the grace period, 5 s, behind its clock), commits, and dies before writing the
// outbox. Recovery must still find the intent and write the outbox rows: the pass that closes
// the bucket (grace + RecoveryClockMargin after its end) reads it whole (before issue 10 the
// checkpoint left that bucket behind and no pass read it again: committed events, no outbox row).
func TestRecoveryReachesIntentsOfLateClockWriters(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const grace, skew = 5 * time.Second, 20 * time.Second
	// The sweeper's clock, moved on below to the pass that closes the writer's bucket.
	var ahead atomic.Int64
	sweeper := cql.NewEventStore(s, codec.NewRegistry(), cql.Options{Now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }})

	// Between 7 s and 17 s past a minute, Bucket(now − grace) is this minute and
	// Bucket(now − skew) the previous one.
	for sec := time.Now().Second(); sec < 7 || sec >= 17; sec = time.Now().Second() {
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := sweeper.RecoverIntents(ctx, grace); err != nil { // read up to 5 s ago
		t.Fatal(err)
	}

	// The writer dies after its commit, before the outbox.
	id := uuid.NewString()
	ids := crashAt(t, s, cql.Options{Now: func() time.Time { return time.Now().Add(-skew) }}, id, cql.StepCommitted)

	// A pass now reads the open buckets after where the first stopped: not the intent.
	if st, err := sweeper.RecoverIntents(ctx, grace); err != nil || st.Scanned != 0 {
		t.Fatalf("second pass: %+v, %v (want nothing read: the intent's time is behind where the first pass stopped)", st, err)
	}
	// The pass that closes the writer's bucket (the previous minute; this one too, should the
	// test have run late) reads it whole.
	ahead.Store(int64(2*time.Minute + grace + 10*time.Second))
	if _, err := sweeper.RecoverIntents(ctx, grace); err != nil {
		t.Fatal(err)
	}
	events := checkNoLossNoPhantom(t, s)
	if events[eventKey{id, 1}] != ids[0] || events[eventKey{id, 2}] != ids[1] {
		t.Errorf("the late writer's events are not in event_store: %v", events)
	}
}
