package outboxpoll_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/outboxpoll"
)

// appendOne appends the first event of a new aggregate through st (the real append protocol)
// and returns the event's id.
func appendOne(t *testing.T, st *cql.EventStore) string {
	agg, evID := uuid.NewString(), uuid.NewString()
	_, err := st.Append(context.Background(), es.AppendRequest{AggregateID: agg, AggregateType: "Order", Events: []es.Envelope{{
		EventID: evID, AggregateID: agg, AggregateType: "Order", Sequence: 1, EventType: "OrderConfirmed",
		SchemaVersion: 1, Payload: []byte{1}, OccurredAt: time.Now().UTC()}}})
	if err != nil {
		t.Errorf("append: %v", err)
	}
	return evID
}

// sleepUntil sleeps until t.
func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }

// TestPollerReachesRowsOfSkewedAndPausedWriters is loss path 2 of issue 10: around a minute
// boundary B, three writers append through the real EventStore while the real poller reads:
//   - a writer whose clock is 5 s ahead (writes at B−3 s),
//   - a writer paused 4.5 s between building its outbox insert and executing it (built at B−1 s),
//   - a writer whose clock is 5 s behind (writes at B+3.5 s, when its clock says B−1.5 s),
//   - a writer whose host clock is 40 s behind but that reads the cluster's clock
//     (cql.ClusterClock), as the services do (writes at B+3.5 s).
//
// Before issue 10 a row's bucket came from the writer's clock and its id from the coordinator's
// now(): the paused and the late-clock writers put rows with ids past B+2 s into the bucket before
// B, which both cursors had closed by then, so neither was ever delivered. Now every row must be
// delivered, the paused writer's row by the fast cursor (it is written again, with a fresh id,
// after its slow write), and the cluster-clock writer's too (no skew left to be late by).
func TestPollerReachesRowsOfSkewedAndPausedWriters(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	reg := codec.NewRegistry()
	skewed := func(d time.Duration) func() time.Time { return func() time.Time { return time.Now().Add(d) } }

	// The next minute boundary at least 6 s away.
	boundary := time.Now().Truncate(time.Minute).Add(time.Minute)
	if time.Until(boundary) < 6*time.Second {
		boundary = boundary.Add(time.Minute)
	}
	cfg := testConfig
	cfg.RescanWindow = 8 * time.Second // longer than the 5 s skew: the late-clock writer's rows are late by that much
	sk := &sink{}
	stop := run(t, s, cfg, sk)
	defer stop()
	sleepUntil(boundary.Add(-4 * time.Second))

	var wg sync.WaitGroup
	var ahead, paused, behind, synced string
	wg.Add(4)
	go func() {
		defer wg.Done()
		sleepUntil(boundary.Add(-3 * time.Second))
		ahead = appendOne(t, cql.NewEventStore(s, reg, cql.Options{Now: skewed(5 * time.Second)}))
	}()
	go func() {
		defer wg.Done()
		sleepUntil(boundary.Add(-time.Second))
		var once sync.Once
		paused = appendOne(t, cql.NewEventStore(s, reg, cql.Options{Hook: func(step cql.Step) {
			if step == cql.StepOutboxBuilt {
				once.Do(func() { sleepUntil(boundary.Add(3500 * time.Millisecond)) })
			}
		}}))
	}()
	go func() {
		defer wg.Done()
		sleepUntil(boundary.Add(3500 * time.Millisecond))
		behind = appendOne(t, cql.NewEventStore(s, reg, cql.Options{Now: skewed(-5 * time.Second)}))
	}()
	go func() {
		defer wg.Done()
		clock := cql.NewClusterClock(s, skewed(-40*time.Second))
		if err := clock.Sync(context.Background()); err != nil {
			t.Errorf("sync the cluster clock: %v", err)
			return
		}
		sleepUntil(boundary.Add(3500 * time.Millisecond))
		synced = appendOne(t, cql.NewEventStore(s, reg, cql.Options{Now: clock.Now}))
	}()
	wg.Wait()
	if t.Failed() {
		return
	}

	delivered := func(id string) bool {
		return sk.seen(outboxpoll.FastCursor)[id]+sk.seen(outboxpoll.RescanCursor)[id] > 0
	}
	deadline := boundary.Add(20 * time.Second)
	for !(delivered(ahead) && delivered(paused) && delivered(behind) && delivered(synced)) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	for _, w := range []struct{ name, id string }{{"clock 5 s ahead", ahead}, {"paused 4.5 s", paused}, {"clock 5 s behind", behind},
		{"host clock 40 s behind, cluster clock", synced}} {
		fast, rescan := sk.seen(outboxpoll.FastCursor)[w.id], sk.seen(outboxpoll.RescanCursor)[w.id]
		t.Logf("writer %s: event %s delivered %d time(s) by the fast cursor, %d by the rescan", w.name, w.id, fast, rescan)
		if fast+rescan == 0 {
			t.Errorf("writer %s: its outbox row was never delivered by any cursor", w.name)
		}
	}
	if sk.seen(outboxpoll.FastCursor)[paused] == 0 {
		t.Errorf("the paused writer's row was not delivered by the fast cursor: it was not written again after its slow write")
	}
	if sk.seen(outboxpoll.FastCursor)[synced] == 0 {
		t.Errorf("the cluster-clock writer's row was not delivered by the fast cursor")
	}
}
