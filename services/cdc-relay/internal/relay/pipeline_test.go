package relay_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"

	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/relay"
)

func TestPipelinePublishesInOrderAndDropsDuplicates(t *testing.T) {
	h := newHarness(t)
	agg := newAgg()
	e1, e2, e3 := h.event(agg, 1), h.event(agg, 2), h.event(agg, 3)
	c1 := h.submit(e1)
	c1dup := h.submit(e1)
	c2 := h.submit(e2)
	c3 := h.submit(e3)
	h.waitSettled(c1, c1dup, c2, c3)
	wantSeqs(t, h.broker.sequences("order-events")[agg], 1, 2, 3)
	if h.progress.m[agg] != 3 {
		t.Fatalf("progress %d, want 3", h.progress.m[agg])
	}
	// A late copy of an old row is dropped.
	late := h.submit(e2)
	h.waitSettled(late)
	if h.outcome(late) != relay.Duplicate {
		t.Fatalf("late duplicate settled as %v", h.outcome(late))
	}
	wantSeqs(t, h.broker.sequences("order-events")[agg], 1, 2, 3)
}

func TestPipelineFillsGapsFromEventStore(t *testing.T) {
	h := newHarness(t)
	agg := newAgg()
	e1, _, _, e4 := h.event(agg, 1), h.event(agg, 2), h.event(agg, 3), h.event(agg, 4)
	c1 := h.submit(e1)
	h.waitSettled(c1)
	// Rows 2 and 3 are late (their writers have not written the outbox yet): 4 comes first.
	c4 := h.submit(e4)
	h.waitSettled(c4)
	wantSeqs(t, h.broker.sequences("order-events")[agg], 1, 2, 3, 4)
	if got := testutilCounter(h.metrics.GapFilled); got != 2 {
		t.Fatalf("gap_filled = %v, want 2", got)
	}
	// Their rows arrive at last: duplicates.
	c2 := h.submit(h.events.m[agg][1])
	c3 := h.submit(h.events.m[agg][2])
	h.waitSettled(c2, c3)
	if h.outcome(c2) != relay.Duplicate || h.outcome(c3) != relay.Duplicate {
		t.Fatal("late rows were not dropped as duplicates")
	}
	wantSeqs(t, h.broker.sequences("order-events")[agg], 1, 2, 3, 4)
}

func TestPipelineRetriesKeepOrderAndOthersFlow(t *testing.T) {
	h := newHarness(t)
	stuck, free := newAgg(), newAgg()
	// The stuck aggregate's partition refuses its records for a while (a leader change, say).
	var mu sync.Mutex
	refuse := true
	h.broker.setFail(func(m kafkago.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if refuse && string(m.Key) == stuck {
			return kafkago.NotLeaderForPartition
		}
		return nil
	})
	var cs []*relay.Change
	for seq := int64(1); seq <= 3; seq++ {
		cs = append(cs, h.submit(h.event(stuck, seq)))
	}
	var freeCs []*relay.Change
	for seq := int64(1); seq <= 20; seq++ {
		freeCs = append(freeCs, h.submit(h.event(free, seq)))
	}
	h.waitSettled(freeCs...)
	if got := h.broker.sequences("order-events")[stuck]; len(got) != 0 {
		t.Fatalf("stuck aggregate published %v while refused", got)
	}
	mu.Lock()
	refuse = false
	mu.Unlock()
	h.waitSettled(cs...)
	wantSeqs(t, h.broker.sequences("order-events")[stuck], 1, 2, 3)
	if testutilCounter(h.metrics.Retried) == 0 {
		t.Fatal("no retry counted")
	}
}

func TestPipelineBrokerOutageOpensBreakerAndLosesNothing(t *testing.T) {
	h := newHarness(t)
	down := errors.New("dial tcp: connection refused")
	h.broker.setFail(func(kafkago.Message) error { return down })
	agg := newAgg()
	var cs []*relay.Change
	for seq := int64(1); seq <= 5; seq++ {
		cs = append(cs, h.submit(h.event(agg, seq)))
	}
	deadline := time.Now().Add(5 * time.Second)
	for testutilGauge(h.metrics.BreakerState) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("breaker did not open")
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.mu.Lock()
	settled := len(h.outcomes)
	h.mu.Unlock()
	if settled != 0 || h.progress.m[agg] != 0 {
		t.Fatalf("%d changes settled and progress %d during the outage", settled, h.progress.m[agg])
	}
	h.broker.setFail(nil)
	h.waitSettled(cs...)
	wantSeqs(t, h.broker.sequences("order-events")[agg], 1, 2, 3, 4, 5)
	if testutilGauge(h.metrics.BreakerState) != 0 {
		t.Fatal("breaker did not close")
	}
	if len(h.dlq.dls) != 0 {
		t.Fatal("an outage dead-lettered something")
	}
}

func TestPipelinePublishSpanContinuesCommandTrace(t *testing.T) {
	h := newHarness(t)
	agg := newAgg()
	c := h.submit(h.event(agg, 1))
	h.waitSettled(c)
	spans := h.spans.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Parent().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Parent().SpanID().String() != "00f067aa0ba902b7" {
		t.Fatalf("publish span parent %v, want the command's span", s.Parent())
	}
	attrs := map[attribute.Key]string{}
	for _, kv := range s.Attributes() {
		attrs[kv.Key] = kv.Value.Emit()
	}
	for k, want := range map[attribute.Key]string{"correlation_id": "corr", "causation_id": "cmd-1", "aggregate_id": agg} {
		if attrs[k] != want {
			t.Errorf("publish span attribute %s = %q, want %q", k, attrs[k], want)
		}
	}
	h.broker.mu.Lock()
	tp, _ := okafka.Header(h.broker.got[0].Headers, okafka.HeaderTraceParent)
	h.broker.mu.Unlock()
	want := fmt.Sprintf("00-%s-%s-01", s.SpanContext().TraceID(), s.SpanContext().SpanID())
	if tp != want {
		t.Fatalf("traceparent header %q, want the publish span %q", tp, want)
	}
}
