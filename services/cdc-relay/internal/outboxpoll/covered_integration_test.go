package outboxpoll_test

import (
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/outboxpoll"
)

// TestRescanSkipsABacklogTheFastCursorReadLate starts the poller on a backlog: 45 rows whose
// ids are already older than the rescan window (a relay starting after an outage). The fast
// cursor reads them, in full batches and then up to its horizon, when they are already that old;
// the rescan cursor must not read them a second time (before, it re-read every one right behind
// the fast cursor, doubling the store's reads while the relay caught up). It must still read
// what it is there for: a row that becomes visible, inside the window, after the fast cursor
// passed its id.
func TestRescanSkipsABacklogTheFastCursorReadLate(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	awayFromMinuteEdge(15 * time.Second)
	agg := gocql.TimeUUID()
	t0 := time.Now().Add(-10 * time.Second)
	backlog := map[string]bool{}
	for i := range 45 {
		backlog[insertRow(t, s, agg, int64(i+1), t0.Add(time.Duration(i)*time.Millisecond))] = true
	}
	cfg := testConfig
	cfg.BatchSize = 10
	sk := &sink{}
	stop := run(t, s, cfg, sk)
	defer stop()
	waitFor(t, "the fast cursor to read the backlog", 10*time.Second, func() bool {
		seen := sk.seen(outboxpoll.FastCursor)
		for id := range backlog {
			if seen[id] != 1 {
				return false
			}
		}
		return true
	})

	// A row visible late, inside the rescan window: only the rescan cursor can deliver it, and it
	// reads in id order, so once it has it has passed the backlog.
	fresh := time.Now()
	c := insertRow(t, s, agg, 99, fresh)
	waitFor(t, "the fast cursor to read a fresh row", 5*time.Second, func() bool { return sk.seen(outboxpoll.FastCursor)[c] == 1 })
	time.Sleep(cfg.SafetyWindow + 5*cfg.PollInterval) // its position passes it once its horizon does
	late := insertRow(t, s, agg, 100, fresh.Add(-500*time.Millisecond))
	waitFor(t, "the rescan cursor to read the late row", 10*time.Second, func() bool {
		return sk.seen(outboxpoll.RescanCursor)[late] == 1
	})
	if sk.seen(outboxpoll.FastCursor)[late] != 0 {
		t.Fatal("the fast cursor read a row behind its position: the test did not exercise the rescan")
	}
	reread := 0
	for id, n := range sk.seen(outboxpoll.RescanCursor) {
		if backlog[id] {
			reread += n
		}
	}
	if reread != 0 {
		t.Fatalf("the rescan cursor read %d of the %d backlog rows again; the fast cursor had read them all once they were older than the rescan window", reread, len(backlog))
	}
}
