package relay_test

import (
	"context"
	"testing"

	"github.com/gocql/gocql"

	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/relay"
)

func TestPipelineDeadLettersPoisonAndTooLarge(t *testing.T) {
	h := newHarness(t)
	agg := newAgg()
	// A row whose envelope does not decode and that event_store does not know.
	poison := h.submitRaw(newAgg(), 1, gocql.TimeUUID().String(), []byte{0xff, 0xff, 0xff})
	// A real event too large for the broker, between two ordinary ones.
	e1 := h.event(agg, 1)
	e2 := h.event(agg, 2)
	e2.Metadata = map[string]string{"blob": string(make([]byte, 20_000))}
	h.events.m[agg][1] = e2
	e3 := h.event(agg, 3)
	c1, c2, c3 := h.submit(e1), h.submit(e2), h.submit(e3)
	h.waitSettled(poison, c1, c2, c3)
	if h.outcome(poison) != relay.DeadLettered || h.outcome(c2) != relay.DeadLettered {
		t.Fatalf("outcomes poison=%v big=%v, want dead-lettered", h.outcome(poison), h.outcome(c2))
	}
	wantSeqs(t, h.broker.sequences("order-events")[agg], 1, 3)
	dlq := h.broker.sequences("order-events.dlq")
	if len(dlq) != 2 {
		t.Fatalf("dead-letter topic got %v, want the poison row and the large event", dlq)
	}
	h.broker.mu.Lock()
	for _, m := range h.broker.got {
		if m.Topic != "order-events.dlq" {
			continue
		}
		if r, _ := okafka.Header(m.Headers, okafka.HeaderDLQReason); r == "" {
			t.Errorf("dead letter without reason header: %v", m.Headers)
		}
		if string(m.Key) == agg {
			if v, _ := okafka.Header(m.Headers, okafka.HeaderDLQValueOmitted); v != "true" || m.Value != nil {
				t.Errorf("too-large dead letter should omit its value")
			}
		}
	}
	h.broker.mu.Unlock()
	if len(h.dlq.dls) != 2 {
		t.Fatalf("%d dead-letter records, want 2", len(h.dlq.dls))
	}
	for _, dl := range h.dlq.dls {
		if dl.Reason == "" || len(dl.Envelope) == 0 || dl.Topic != "order-events" {
			t.Errorf("dead letter record %+v", dl)
		}
	}
}

// TestPoisonRowReadAgainIsDeadLetteredOnce: an undecodable outbox row read a second time after
// it was dead-lettered (the rescan cursor reads the outbox again 30 s behind; a restart reads
// from the checkpoint) is settled without a second dead letter in the topic or the table.
// Before, nothing remembered it (it is not part of the stream's progress), so each reading
// dead-lettered it again.
func TestPoisonRowReadAgainIsDeadLetteredOnce(t *testing.T) {
	h := newHarness(t)
	agg, row := newAgg(), gocql.TimeUUID()
	read := func() *relay.Change {
		c := &relay.Change{Cursor: "test", AggregateID: agg, AggregateType: "Order", Sequence: 1, EventID: gocql.TimeUUID().String(),
			Envelope: []byte{0xff, 0xff, 0xff}, CommittedAt: row.Time(), RowID: row}
		c.OnDone = func(o relay.Outcome) {
			h.mu.Lock()
			h.outcomes[c] = o
			h.mu.Unlock()
		}
		if err := h.p.Submit(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		h.waitSettled(c)
		return c
	}
	first, again := read(), read()
	if h.outcome(first) != relay.DeadLettered || h.outcome(again) != relay.DeadLettered {
		t.Fatalf("outcomes %v, %v; want dead-lettered both", h.outcome(first), h.outcome(again))
	}
	if dlq := h.broker.sequences("order-events.dlq"); len(dlq) != 1 {
		t.Errorf("dead-letter topic got %v, want the row once", dlq)
	}
	if len(h.dlq.dls) != 1 || h.dlq.dls[0].ID != row {
		t.Errorf("dead-letter records %v, want one, under the row's id %s", h.dlq.dls, row)
	}
}

// TestDeadLetterWhoseRecordingAnswerWasLostStillReachesTheTopic: the record of a poison row is
// written but its answer lost (an LWT timeout); the retry finds the record, and since it is this
// entry's own, the dead letter still goes to the topic, once.
func TestDeadLetterWhoseRecordingAnswerWasLostStillReachesTheTopic(t *testing.T) {
	h := newHarness(t)
	h.dlq.mu.Lock()
	h.dlq.lostAnswers = 1
	h.dlq.mu.Unlock()
	row := gocql.TimeUUID()
	c := &relay.Change{Cursor: "test", AggregateID: newAgg(), AggregateType: "Order", Sequence: 1, EventID: gocql.TimeUUID().String(),
		Envelope: []byte{0xff, 0xff, 0xff}, CommittedAt: row.Time(), RowID: row}
	c.OnDone = func(o relay.Outcome) {
		h.mu.Lock()
		h.outcomes[c] = o
		h.mu.Unlock()
	}
	if err := h.p.Submit(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	h.waitSettled(c)
	if h.outcome(c) != relay.DeadLettered {
		t.Fatalf("outcome %v, want dead-lettered", h.outcome(c))
	}
	if dlq := h.broker.sequences("order-events.dlq"); len(dlq) != 1 {
		t.Errorf("dead-letter topic got %v, want the row once", dlq)
	}
	if len(h.dlq.dls) != 1 {
		t.Errorf("%d dead-letter records, want 1", len(h.dlq.dls))
	}
}

// TestPipelineRepairsBrokenRowFromEventStore: an outbox row whose envelope is damaged but whose
// event is committed is published from event_store, not dead-lettered.
func TestPipelineRepairsBrokenRowFromEventStore(t *testing.T) {
	h := newHarness(t)
	agg := newAgg()
	e1 := h.event(agg, 1)
	c := h.submitRaw(agg, 1, e1.EventID, []byte("garbage"))
	h.waitSettled(c)
	if h.outcome(c) != relay.Published || len(h.dlq.dls) != 0 {
		t.Fatalf("outcome %v, %d dead letters", h.outcome(c), len(h.dlq.dls))
	}
	wantSeqs(t, h.broker.sequences("order-events")[agg], 1)
}
