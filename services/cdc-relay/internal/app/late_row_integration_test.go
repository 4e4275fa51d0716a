package app_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/testinfra"
)

// startLeading starts a relay in this process on a fresh keyspace and topics, waits until it
// leads, and starts reading its order topic.
func startLeading(t *testing.T) (*env, *relayProc, *collector) {
	testinfra.Require(t)
	e := newEnv(t, nil)
	r := e.startInProcess("r1", nil)
	waitUntil(t, "leadership", 20*time.Second, func() bool { return r.metric("ordersys_relay_leader") == 1 })
	return e, r, collect(t, e.kafka, e.orderTopic)
}

// TestRelayPublishesALateRowInOrder: the writer of an order's second event commits it, then
// pauses 2 s between building its outbox row and sending it (the row becomes visible long after
// the relay's 250 ms window has passed its id); meanwhile the third event is appended normally.
// Through the real relay and Kafka, events 1, 2, 3 arrive in that order (2 from event_store, as a
// gap before 3), and the late row and its re-write are dropped as duplicates of the same event id,
// not counted as divergent.
func TestRelayPublishesALateRowInOrder(t *testing.T) {
	e, r, c := startLeading(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	agg := uuid.NewString()
	if _, err := e.appendOrder(ctx, agg, 0, 1); err != nil {
		t.Fatal(err)
	}
	committed := make(chan struct{})
	var once sync.Once
	paused := *e
	paused.store = cql.NewEventStore(e.session, registry, cql.Options{
		Topics: map[string]string{"Order": e.orderTopic, "Customer": e.customerTopic},
		Hook: func(step cql.Step) {
			switch step {
			case cql.StepCommitted:
				close(committed)
			case cql.StepOutboxBuilt:
				once.Do(func() { time.Sleep(2 * time.Second) })
			}
		}})
	lateErr := make(chan error, 1)
	go func() {
		_, err := paused.appendOrder(ctx, agg, 1, 1)
		lateErr <- err
	}()
	select {
	case <-committed:
	case err := <-lateErr:
		t.Fatalf("the paused writer returned before its commit: %v", err)
	}
	if _, err := e.appendOrder(ctx, agg, 2, 1); err != nil {
		t.Fatal(err)
	}
	if err := <-lateErr; err != nil {
		t.Fatal(err)
	}

	c.waitDistinct(t, 3, 30*time.Second)
	verify(t, c.records(), map[string]int64{agg: 3}, 3)
	// The late row (and its re-write) reach the relay after event 2 was published from the gap.
	waitUntil(t, "the late rows to be dropped as duplicates", 20*time.Second, func() bool {
		return r.sum("ordersys_relay_duplicates_dropped_total") >= 1
	})
	if got := r.metric("ordersys_relay_gap_filled_total"); got < 1 {
		t.Errorf("gap_filled_total = %v, want event 2 read from event_store before 3", got)
	}
	if got := r.metric("ordersys_relay_divergent_events_total"); got != 0 {
		t.Errorf("divergent_events_total = %v, want 0 (the late row is the same event)", got)
	}
}
