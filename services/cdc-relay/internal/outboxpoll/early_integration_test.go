package outboxpoll_test

import (
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/outboxpoll"
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
