package outboxpoll_test

import (
	"context"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/outboxpoll"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/store"
)

// TestFastCursorReadsAheadOfItsWindow: with a 3 s safety window, a row becomes visible to the
// fast cursor at once (read ahead of the horizon), is delivered once while the horizon catches
// up, and the position still waits for the horizon: the row is not delivered again when it
// passes (it was settled early).
func TestFastCursorReadsAheadOfItsWindow(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	awayFromMinuteEdge(10 * time.Second)
	cfg := testConfig
	cfg.SafetyWindow, cfg.DisableRescan = 3*time.Second, true
	sk := &sink{}
	stop := run(t, s, cfg, sk)
	defer stop()

	written := time.Now()
	ev := insertRow(t, s, gocql.TimeUUID(), 1, written)
	waitFor(t, "the row, well within the 3 s window", 2*time.Second, func() bool { return sk.seen(outboxpoll.FastCursor)[ev] == 1 })
	t.Logf("delivered %s after the write (safety window 3 s)", time.Since(written).Round(time.Millisecond))
	time.Sleep(cfg.SafetyWindow + 10*cfg.PollInterval) // the horizon passes the row
	if n := sk.seen(outboxpoll.FastCursor)[ev]; n != 1 {
		t.Fatalf("delivered %d times by the fast cursor, want once", n)
	}
}

// TestRowStillOpenWhenTheHorizonReachesItIsNotSubmittedAgain: a row submitted ahead of the
// horizon whose publication is still open when the horizon passes it is not submitted a second
// time (that dead-lettered an undecodable row twice), and the checkpoint waits for it: it
// passes the row only once its first submission is settled.
func TestRowStillOpenWhenTheHorizonReachesItIsNotSubmittedAgain(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	awayFromMinuteEdge(10 * time.Second)
	cfg := testConfig
	cfg.DisableRescan = true
	agg := gocql.TimeUUID()
	before := insertRow(t, s, agg, 1, time.Now().Add(-time.Second))
	sk := &sink{hold: map[string]bool{}}
	stop := run(t, s, cfg, sk)
	defer stop()
	waitFor(t, "the first row", 5*time.Second, func() bool { return sk.seen(outboxpoll.FastCursor)[before] == 1 })

	ev := gocql.TimeUUID()
	held := ev.String()
	sk.mu.Lock()
	sk.hold[held] = true // the sink leaves it unsettled until sk.settle
	sk.mu.Unlock()
	written := time.Now()
	insertEvent(t, s, agg, 2, written, ev)
	written = written.Add(-time.Microsecond) // a timeuuid keeps 100 ns
	waitFor(t, "the second row, ahead of the horizon", 2*time.Second, func() bool { return sk.seen(outboxpoll.FastCursor)[held] == 1 })
	time.Sleep(cfg.SafetyWindow + 10*cfg.PollInterval + 2*cfg.CheckpointEvery) // the horizon passes it
	if n := sk.seen(outboxpoll.FastCursor)[held]; n != 1 {
		t.Fatalf("the open row was submitted %d times by the fast cursor, want once", n)
	}
	checkpoints := store.NewCheckpoints(s)
	cp, _, err := checkpoints.Load(context.Background(), outboxpoll.FastCursor, cql.ShardOf(agg.String()))
	if err != nil || !cp.LastID.Time().Before(written) {
		t.Fatalf("checkpoint at %v (%v): it passed the row still open (written %v)", cp.LastID.Time(), err, written)
	}

	sk.settle(held)
	waitFor(t, "the checkpoint to pass the settled row", 3*time.Second, func() bool {
		cp, _, err := checkpoints.Load(context.Background(), outboxpoll.FastCursor, cql.ShardOf(agg.String()))
		return err == nil && !cp.LastID.Time().Before(written)
	})
	if n := sk.seen(outboxpoll.FastCursor)[held]; n != 1 {
		t.Fatalf("submitted %d times, want once", n)
	}
}
