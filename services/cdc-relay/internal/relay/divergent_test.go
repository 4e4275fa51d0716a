package relay_test

import (
	"strings"
	"testing"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/services/cdc-relay/internal/relay"
)

// Loss path 3 of issue 10: a second outbox row at an already-published sequence with another
// event id used to be dropped as a duplicate, silently. It must be counted and logged with both
// ids, and not published (the sequence's published event stands).
func TestPipelineDivergentEventAtPublishedSequenceIsCountedNotDropped(t *testing.T) {
	h := newHarness(t)
	agg := newAgg()
	e1 := h.event(agg, 1)
	h.waitSettled(h.submit(e1))

	other := e1
	other.EventID = gocql.TimeUUID().String()
	other.Payload = []byte("another event")
	divergent := h.submit(other)
	same := h.submit(e1) // a true duplicate, for contrast
	h.waitSettled(divergent, same)

	if o := h.outcome(divergent); o != relay.Divergent {
		t.Errorf("row with event %s at published sequence 1 (published %s) settled as %v, want divergent", other.EventID, e1.EventID, o)
	}
	if o := h.outcome(same); o != relay.Duplicate {
		t.Errorf("a copy of the published row settled as %v, want duplicate", o)
	}
	if got := testutilCounter(h.metrics.Divergent); got != 1 {
		t.Errorf("divergent_events_total = %v, want 1", got)
	}
	if got := testutilCounter(h.metrics.Duplicates.WithLabelValues("test")); got != 1 {
		t.Errorf("duplicates_dropped_total = %v, want 1 (the true duplicate only)", got)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, other.EventID) || !strings.Contains(logs, e1.EventID) || !strings.Contains(logs, agg) {
		t.Errorf("no log line with the aggregate and both event ids (%s, %s):\n%s", other.EventID, e1.EventID, logs)
	}
	wantSeqs(t, h.broker.sequences("order-events")[agg], 1)
}

// After a restart nothing is cached: a row at or below publish_progress is confirmed against
// event_store, the truth, before it is dropped as a duplicate.
func TestPipelineConfirmsOldRowsAgainstEventStore(t *testing.T) {
	h := newHarness(t)
	agg := newAgg()
	e1, e2 := h.event(agg, 1), h.event(agg, 2)
	_ = h.progress.Save(t.Context(), map[string]int64{agg: 2}) // published in an earlier term
	other := e2
	other.EventID = gocql.TimeUUID().String()
	c1, c2, cOther := h.submit(e1), h.submit(e2), h.submit(other)
	h.waitSettled(c1, c2, cOther)
	if h.outcome(c1) != relay.Duplicate || h.outcome(c2) != relay.Duplicate {
		t.Errorf("rows of events in event_store settled as %v, %v; want duplicates", h.outcome(c1), h.outcome(c2))
	}
	if o := h.outcome(cOther); o != relay.Divergent {
		t.Errorf("row with an event id event_store does not hold settled as %v, want divergent", o)
	}
	if got := testutilCounter(h.metrics.Divergent); got != 1 {
		t.Errorf("divergent_events_total = %v, want 1", got)
	}
	if got := h.broker.sequences("order-events")[agg]; len(got) != 0 {
		t.Errorf("published %v, want nothing (all at or below publish_progress)", got)
	}
}

// Two rows with two event ids at a sequence not yet published: one is published, the other is
// compared with event_store once it is, and counted as divergent, not merged into the first.
func TestPipelineSecondEventAtPendingSequenceIsNotMerged(t *testing.T) {
	h := newHarness(t)
	agg := newAgg()
	h.broker.mu.Lock() // hold the broker so that both rows are pending together
	e1 := h.event(agg, 1)
	other := e1
	other.EventID = gocql.TimeUUID().String()
	c1, cOther := h.submit(e1), h.submit(other)
	h.broker.mu.Unlock()
	h.waitSettled(c1, cOther)
	if h.outcome(c1) != relay.Published || h.outcome(cOther) != relay.Divergent {
		t.Errorf("settled as %v and %v, want published and divergent", h.outcome(c1), h.outcome(cOther))
	}
	if got := testutilCounter(h.metrics.Divergent); got != 1 {
		t.Errorf("divergent_events_total = %v, want 1", got)
	}
	wantSeqs(t, h.broker.sequences("order-events")[agg], 1)
}
