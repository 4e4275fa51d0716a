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

// TestSlowOutboxWriteKeepsIntentForRecovery: outbox rows whose write takes longer than
// OutboxMaxDelay (here every write) may become visible after a cursor passed their ids. The
// append still succeeds (it committed), but the intent stays; a recovery pass that is slow too
// writes the rows again and keeps the intent, and reads it again on its next pass; a normal pass
// settles it.
func TestSlowOutboxWriteKeepsIntentForRecovery(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	slow := cql.NewEventStore(s, codec.NewRegistry(), cql.Options{OutboxMaxDelay: time.Nanosecond})
	id := uuid.NewString()
	if _, err := slow.Append(ctx, faultRequest(id, 0, newIDs(2))); err != nil {
		t.Fatalf("append with slow outbox writes: %v (it committed: must succeed)", err)
	}
	if n := countIntents(t, s, id); n != 1 {
		t.Fatalf("intents after a slow outbox write: %d, want 1", n)
	}
	stats, err := slow.RecoverIntents(ctx, 0)
	if err != nil || stats.Committed != 1 {
		t.Fatalf("slow recovery pass: %+v %v, want one intent committed (rows written again)", stats, err)
	}
	if n := countIntents(t, s, id); n != 1 {
		t.Fatalf("intents after a slow recovery pass: %d, want 1 (kept for the next pass)", n)
	}
	// The same sweeper's next pass reads the intent it left again (its cursor stays below it).
	if stats, err := slow.RecoverIntents(ctx, 0); err != nil || stats.Committed != 1 {
		t.Fatalf("second slow recovery pass: %+v %v, want the kept intent read and committed again", stats, err)
	}
	if _, err := cql.NewEventStore(s, codec.NewRegistry(), cql.Options{}).RecoverIntents(ctx, 0); err != nil {
		t.Fatal(err)
	}
	checkNoLossNoPhantom(t, s)
}
