package cql_test

import (
	"context"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
)

// crashAt creates aggregate id (two events) through a writer on s with opts that dies (panics)
// at step, and returns the event ids.
func crashAt(t *testing.T, s *gocql.Session, opts cql.Options, id string, step cql.Step) (ids []string) {
	t.Helper()
	ids = newIDs(2) // named: returned after the recovered panic
	opts.Hook = func(at cql.Step) {
		if at == step {
			panic(errCrash{})
		}
	}
	writer := cql.NewEventStore(s, codec.NewRegistry(), opts)
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(errCrash); !ok {
				panic(r)
			}
		}
	}()
	_, err := writer.Append(context.Background(), faultRequest(id, 0, ids))
	t.Fatalf("the writer did not die at %s: %v", step, err)
	return ids
}

// TestRecoveryGoesOnPastIntentsItCannotSettle: one intent whose envelopes do not decode, sitting
// in an earlier bucket, used to stop every recovery pass before the intents after it, so a writer
// that committed and died after it never got its outbox rows. Now such an intent is counted and
// reported, left in pending_appends, and the pass goes on.
func TestRecoveryGoesOnPastIntentsItCannotSettle(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sweeper := cql.NewEventStore(s, codec.NewRegistry(), cql.Options{})

	poisonAgg := gocql.TimeUUID()
	err := s.Query(`INSERT INTO pending_appends (bucket, shard, attempt_id, aggregate_id, aggregate_type, expected_version,
 command_id, command_fingerprint, envelopes, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)`,
		cql.Bucket(time.Now())-2, 0, gocql.TimeUUID(), poisonAgg, "Order", 0, "", "", [][]byte{[]byte("not an envelope")},
		time.Now().Add(-2*time.Minute)).Exec()
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	crashAt(t, s, cql.Options{}, id, cql.StepCommitted)

	stats, err := sweeper.RecoverIntents(ctx, 0)
	if err == nil || stats.Poison != 1 {
		t.Errorf("recovery: %+v %v, want the undecodable intent counted and reported", stats, err)
	}
	if stats.Committed != 1 {
		t.Errorf("recovery committed %d intents, want the crashed writer's (the pass must go on)", stats.Committed)
	}
	if n := countIntents(t, s, poisonAgg.String()); n != 1 {
		t.Errorf("the undecodable intent: %d left, want 1 (kept for an operator)", n)
	}
	_ = s.Query(`DELETE FROM pending_appends WHERE bucket = ? AND shard = 0`, cql.Bucket(time.Now())-2).Exec()
	checkNoLossNoPhantom(t, s)
}

// TestRecoveryOfAnIntentWhoseBatchIsRefusedAsInvalid: a sweeper whose re-issued batch the store
// refuses as invalid (here: a command TTL above Cassandra's 20-year maximum, which Cassandra
// checks only when the condition holds) reports the intent it cannot roll forward, leaves it, and
// goes on to the next one: a writer that committed and died, whose outbox rows it writes. The
// refused intent is in a lower shard, so it is read first (before issue 10 it stopped the pass).
func TestRecoveryOfAnIntentWhoseBatchIsRefusedAsInvalid(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sweeper := cql.NewEventStore(s, codec.NewRegistry(), cql.Options{CommandTTL: 30 * 365 * 24 * time.Hour})

	stuck, done := uuid.NewString(), uuid.NewString()
	for cql.ShardOf(stuck) >= cql.ShardOf(done) {
		stuck, done = uuid.NewString(), uuid.NewString()
	}
	crashAt(t, s, cql.Options{}, stuck, cql.StepIntentWritten) // nothing committed: cannot be rolled forward
	crashAt(t, s, cql.Options{}, done, cql.StepCommitted)      // committed: needs its outbox rows

	stats, err := sweeper.RecoverIntents(ctx, 0)
	if err == nil || stats.Poison != 1 || stats.Committed != 1 {
		t.Fatalf("recovery: %+v %v, want one committed and one reported as impossible to settle", stats, err)
	}
	if n := countIntents(t, s, stuck); n != 1 {
		t.Errorf("the intent that cannot be rolled forward: %d left, want 1", n)
	}
	// A sweeper whose batches are valid settles the rest.
	if _, err := cql.NewEventStore(s, codec.NewRegistry(), cql.Options{}).RecoverIntents(ctx, 0); err != nil {
		t.Fatal(err)
	}
	checkNoLossNoPhantom(t, s)
}
