package outboxpoll_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/outboxpoll"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/relay"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/store"
)

// sink records the changes it gets; hold names event ids it leaves unsettled.
type sink struct {
	mu   sync.Mutex
	got  []*relay.Change
	hold map[string]bool
}

func (s *sink) Submit(_ context.Context, c *relay.Change) error {
	s.mu.Lock()
	s.got = append(s.got, c)
	hold := s.hold[c.EventID]
	s.mu.Unlock()
	if !hold {
		c.OnDone(relay.Published)
	}
	return nil
}

// settle settles the held changes of an event id.
func (s *sink) settle(eventID string) {
	s.mu.Lock()
	var held []*relay.Change
	for _, c := range s.got {
		if c.EventID == eventID && s.hold[c.EventID] {
			held = append(held, c)
		}
	}
	s.mu.Unlock()
	for _, c := range held {
		c.OnDone(relay.Published)
	}
}

// seen returns how often each event id was delivered, by cursor.
func (s *sink) seen(cursor string) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, c := range s.got {
		if c.Cursor == cursor {
			out[c.EventID]++
		}
	}
	return out
}

func (s *sink) order(cursor string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, c := range s.got {
		if c.Cursor == cursor {
			out = append(out, c.EventID)
		}
	}
	return out
}

// insertRow writes an outbox row with the given id time (a late-visible or out-of-order write).
func insertRow(t *testing.T, s *gocql.Session, agg gocql.UUID, seq int64, at time.Time) string {
	t.Helper()
	ev := gocql.TimeUUID()
	insertEvent(t, s, agg, seq, at, ev)
	return ev.String()
}

// insertEvent writes an outbox row of the given event.
func insertEvent(t *testing.T, s *gocql.Session, agg gocql.UUID, seq int64, at time.Time, ev gocql.UUID) {
	t.Helper()
	id := gocql.UUIDFromTime(at)
	err := s.Query(`INSERT INTO outbox_messages (bucket, shard, id, aggregate_id, aggregate_type, sequence, event_id, event_type,
 schema_version, topic, partition_key, envelope, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		cql.Bucket(at), cql.ShardOf(agg.String()), id, agg, "Order", seq, ev, "OrderShipped", 1, "order-events",
		agg.String(), []byte("envelope"), at).Exec()
	if err != nil {
		t.Fatalf("insert outbox row: %v", err)
	}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// awayFromMinuteEdge waits until the clock is at least margin away from a minute boundary, so
// that a test's rows share one bucket.
func awayFromMinuteEdge(margin time.Duration) {
	for {
		s := time.Duration(time.Now().UnixNano() % int64(time.Minute))
		if s > margin && s < time.Minute-margin {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func run(t *testing.T, s *gocql.Session, cfg outboxpoll.Config, sk *sink) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	p := outboxpoll.New(cfg, s, nil, nil)
	go func() { _ = p.Run(ctx, sk); close(done) }()
	return func() { cancel(); <-done }
}

var testConfig = outboxpoll.Config{PollInterval: 20 * time.Millisecond, SafetyWindow: 250 * time.Millisecond,
	RescanWindow: 2 * time.Second, RescanInterval: 100 * time.Millisecond, StartLookback: 2 * time.Minute,
	CheckpointEvery: 100 * time.Millisecond}

// TestPollerMissesNoRowWrittenOutOfOrder writes rows whose ids (the coordinator's clock) are out
// of order with respect to when they become visible: inside the safety window the fast cursor
// reads them all in id order; a row that becomes visible after the fast cursor has passed its id
// is read by the rescan cursor.
func TestPollerMissesNoRowWrittenOutOfOrder(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	awayFromMinuteEdge(12 * time.Second)
	sk := &sink{}
	stop := run(t, s, testConfig, sk)
	defer stop()
	agg := gocql.TimeUUID()

	now := time.Now()
	// Inside the window, committed out of order: the later id is visible first.
	b := insertRow(t, s, agg, 2, now)
	a := insertRow(t, s, agg, 1, now.Add(-150*time.Millisecond))
	waitFor(t, "rows inside the window", 5*time.Second, func() bool {
		seen := sk.seen(outboxpoll.FastCursor)
		return seen[a] == 1 && seen[b] == 1
	})
	if got := sk.order(outboxpoll.FastCursor); len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("fast cursor order %v, want [%s %s] (id order)", got, a, b)
	}

	// A row that becomes visible long after its id was taken: the fast cursor has moved past it.
	c := insertRow(t, s, agg, 3, time.Now())
	waitFor(t, "the fast cursor to deliver the newest row", 5*time.Second, func() bool { return sk.seen(outboxpoll.FastCursor)[c] == 1 })
	// It delivered it ahead of its horizon; its position passes it once the horizon does.
	time.Sleep(testConfig.SafetyWindow + 5*testConfig.PollInterval)
	late := insertRow(t, s, agg, 4, now.Add(-time.Second))
	waitFor(t, "the late row", 10*time.Second, func() bool {
		return sk.seen(outboxpoll.FastCursor)[late]+sk.seen(outboxpoll.RescanCursor)[late] > 0
	})
	if sk.seen(outboxpoll.FastCursor)[late] != 0 {
		t.Fatal("the fast cursor read a row behind its position: the test did not exercise the rescan")
	}
	t.Logf("late row delivered by the rescan cursor %d time(s)", sk.seen(outboxpoll.RescanCursor)[late])
}

// TestPollerCheckpointsOnlySettledRows leaves one row unsettled: after a restart the fast cursor
// delivers it (and what follows) again, and nothing settled before it.
func TestPollerCheckpointsOnlySettledRows(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	awayFromMinuteEdge(8 * time.Second)
	agg := gocql.TimeUUID()
	t0 := time.Now().Add(-2 * time.Second)
	ids := []string{
		insertRow(t, s, agg, 1, t0),
		insertRow(t, s, agg, 2, t0.Add(10*time.Millisecond)),
		insertRow(t, s, agg, 3, t0.Add(20*time.Millisecond)),
	}
	cfg := testConfig
	cfg.DisableRescan = true
	sk := &sink{hold: map[string]bool{ids[1]: true}}
	stop := run(t, s, cfg, sk)
	waitFor(t, "three rows", 5*time.Second, func() bool { return len(sk.seen(outboxpoll.FastCursor)) == 3 })
	time.Sleep(300 * time.Millisecond) // several polls and checkpoint intervals
	stop()

	cp, ok, err := store.NewCheckpoints(s).Load(context.Background(), outboxpoll.FastCursor, cql.ShardOf(agg.String()))
	if err != nil || !ok {
		t.Fatalf("checkpoint: %v (found %v)", err, ok)
	}
	if got := cp.LastID.Time(); got.Sub(t0).Abs() > time.Microsecond {
		t.Fatalf("checkpoint at %v, want at the first row (%v): the unsettled second row must hold it", cp.LastID.Time(), t0)
	}

	sk2 := &sink{}
	stop = run(t, s, cfg, sk2)
	defer stop()
	waitFor(t, "re-delivery", 5*time.Second, func() bool { return len(sk2.seen(outboxpoll.FastCursor)) >= 2 })
	time.Sleep(200 * time.Millisecond)
	seen := sk2.seen(outboxpoll.FastCursor)
	if seen[ids[0]] != 0 || seen[ids[1]] != 1 || seen[ids[2]] != 1 {
		t.Fatalf("after restart delivered %v; want the unsettled row and the one after it, not the settled first", seen)
	}
}
