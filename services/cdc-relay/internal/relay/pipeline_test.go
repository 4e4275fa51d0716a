package relay_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/es"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/relay"
)

type fakeProgress struct {
	mu sync.Mutex
	m  map[string]int64
}

func (f *fakeProgress) Load(_ context.Context, ids []string) (map[string]int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int64{}
	for _, id := range ids {
		out[id] = f.m[id]
	}
	return out, nil
}

func (f *fakeProgress) Save(_ context.Context, seqs map[string]int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, seq := range seqs {
		f.m[id] = max(f.m[id], seq)
	}
	return nil
}

type fakeEvents struct {
	mu sync.Mutex
	m  map[string][]es.Envelope
}

func (f *fakeEvents) LoadRaw(_ context.Context, id string, from, to int64) ([]es.Envelope, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []es.Envelope
	for _, e := range f.m[id] {
		if e.Sequence >= from && e.Sequence <= to {
			out = append(out, e)
		}
	}
	return out, nil
}

type fakeDLQ struct {
	mu  sync.Mutex
	dls []*cql.DeadLetter
	// lostAnswers: the next PutOnce calls record the dead letter but answer with an error (an
	// unknown outcome).
	lostAnswers int
}

func (f *fakeDLQ) Put(_ context.Context, dl *cql.DeadLetter) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	dl.ID = gocql.TimeUUID()
	f.dls = append(f.dls, dl)
	return nil
}

func (f *fakeDLQ) PutOnce(_ context.Context, dl *cql.DeadLetter) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, had := range f.dls {
		if had.Topic == dl.Topic && had.ID == dl.ID {
			return false, nil
		}
	}
	f.dls = append(f.dls, dl)
	if f.lostAnswers > 0 {
		f.lostAnswers--
		return false, errors.New("timeout (potentially executed)")
	}
	return true, nil
}

// fakeBroker records what it accepts; fail decides, per record, whether to refuse it.
type fakeBroker struct {
	mu    sync.Mutex
	got   []kafkago.Message
	calls int
	fail  func(m kafkago.Message) error
	max   int
}

func (b *fakeBroker) MaxMessageBytes() int { return b.max }

func (b *fakeBroker) Publish(_ context.Context, msgs []kafkago.Message) []error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	errs := make([]error, len(msgs))
	for i, m := range msgs {
		if okafka.MessageSize(m) > b.max {
			errs[i] = okafka.ErrMessageTooLarge
			continue
		}
		if b.fail != nil {
			if errs[i] = b.fail(m); errs[i] != nil {
				continue
			}
		}
		b.got = append(b.got, m)
	}
	return errs
}

func (b *fakeBroker) setFail(f func(kafkago.Message) error) {
	b.mu.Lock()
	b.fail = f
	b.mu.Unlock()
}

// sequences returns, per key, the sequences received on topic in order.
func (b *fakeBroker) sequences(topic string) map[string][]int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string][]int64{}
	for _, m := range b.got {
		if m.Topic != topic {
			continue
		}
		s, _ := okafka.Header(m.Headers, okafka.HeaderSequence)
		n, _ := strconv.ParseInt(s, 10, 64)
		out[string(m.Key)] = append(out[string(m.Key)], n)
	}
	return out
}

type harness struct {
	t        *testing.T
	progress *fakeProgress
	events   *fakeEvents
	dlq      *fakeDLQ
	broker   *fakeBroker
	metrics  *relay.Metrics
	reg      *prometheus.Registry // the metrics are registered here
	spans    *tracetest.SpanRecorder
	logs     *lockedBuffer
	p        *relay.Pipeline
	cancel   context.CancelFunc
	done     chan struct{}

	mu       sync.Mutex
	outcomes map[*relay.Change]relay.Outcome
}

func newHarness(t *testing.T) *harness {
	reg := prometheus.NewRegistry()
	h := &harness{t: t, progress: &fakeProgress{m: map[string]int64{}}, events: &fakeEvents{m: map[string][]es.Envelope{}},
		dlq: &fakeDLQ{}, broker: &fakeBroker{max: 10_000}, metrics: relay.NewMetrics(reg), reg: reg,
		spans: tracetest.NewSpanRecorder(), logs: &lockedBuffer{}, outcomes: map[*relay.Change]relay.Outcome{}}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(h.spans))
	h.p = relay.NewPipeline(relay.Config{Lanes: 4, RetryInitial: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond},
		relay.Deps{Progress: h.progress, Events: h.events, DeadLetters: h.dlq, Publisher: h.broker, Metrics: h.metrics,
			Breaker: relay.NewBreaker(relay.BreakerConfig{Failures: 3, OpenTimeout: 100 * time.Millisecond}, h.metrics, nil),
			Tracer:  tp.Tracer("test"), Logger: slog.New(slog.NewJSONHandler(h.logs, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() { _ = h.p.Run(ctx); close(h.done) }()
	t.Cleanup(func() { cancel(); <-h.done })
	return h
}

// event makes event seq of aggregate agg, stores it in the fake event_store and returns it.
func (h *harness) event(agg string, seq int64) es.Envelope {
	env := es.Envelope{EventID: gocql.TimeUUID().String(), AggregateID: agg, AggregateType: "Order", Sequence: seq,
		EventType: "OrderConfirmed", SchemaVersion: 1, Payload: []byte{byte(seq)}, CorrelationID: "corr",
		CausationID: "cmd-" + strconv.FormatInt(seq, 10), OccurredAt: time.Now().UTC(),
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	h.events.mu.Lock()
	h.events.m[agg] = append(h.events.m[agg], env)
	h.events.mu.Unlock()
	return env
}

func (h *harness) submit(env es.Envelope) *relay.Change {
	b, err := codec.MarshalEnvelope(env)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.submitRaw(env.AggregateID, env.Sequence, env.EventID, b)
}

func (h *harness) submitRaw(agg string, seq int64, eventID string, envelope []byte) *relay.Change {
	c := &relay.Change{Cursor: "test", AggregateID: agg, AggregateType: "Order", Sequence: seq, EventID: eventID,
		Envelope: envelope, CommittedAt: time.Now()}
	c.OnDone = func(o relay.Outcome) {
		h.mu.Lock()
		h.outcomes[c] = o
		h.mu.Unlock()
	}
	if err := h.p.Submit(context.Background(), c); err != nil {
		h.t.Fatal(err)
	}
	return c
}

func (h *harness) waitSettled(changes ...*relay.Change) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		n := 0
		for _, c := range changes {
			if _, ok := h.outcomes[c]; ok {
				n++
			}
		}
		h.mu.Unlock()
		if n == len(changes) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.t.Fatalf("changes not settled within 5s")
}

func (h *harness) outcome(c *relay.Change) relay.Outcome {
	h.mu.Lock()
	defer h.mu.Unlock()
	o, ok := h.outcomes[c]
	if !ok {
		h.t.Fatalf("change %s#%d not settled", c.AggregateID, c.Sequence)
	}
	return o
}

func newAgg() string { return gocql.TimeUUID().String() }

func wantSeqs(t *testing.T, got []int64, want ...int64) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("sequences %v, want %v", got, want)
	}
}

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

// TestLagIsTheAgeOfTheOldestUnpublishedEvent: while the broker refuses, the lag grows with the
// age of the event waiting; once it is published the lag is 0 again, and stays 0 while idle
// (it used to be the time since the last publish, which grows on a caught-up relay).
func TestLagIsTheAgeOfTheOldestUnpublishedEvent(t *testing.T) {
	h := newHarness(t)
	lag := func() float64 {
		families, err := h.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == "ordersys_relay_lag_seconds" {
				return f.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no ordersys_relay_lag_seconds")
		return 0
	}
	if l := lag(); l != 0 {
		t.Fatalf("lag %v before any event, want 0", l)
	}
	h.broker.setFail(func(kafkago.Message) error { return errors.New("broker down") })
	env := h.event(newAgg(), 1)
	c := h.submitRaw(env.AggregateID, 1, env.EventID, mustMarshal(t, env))
	time.Sleep(300 * time.Millisecond)
	if l := lag(); l < 0.25 {
		t.Fatalf("lag %v while an event waits 300 ms, want at least 0.25 s", l)
	}
	h.broker.setFail(nil)
	h.waitSettled(c)
	time.Sleep(200 * time.Millisecond) // idle, caught up
	if l := lag(); l != 0 {
		t.Fatalf("lag %v when caught up, want 0", l)
	}
}

func mustMarshal(t *testing.T, env es.Envelope) []byte {
	t.Helper()
	b, err := codec.MarshalEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTermEndClearsLagAndInFlight: a pipeline whose leadership term ends with an event still
// waiting leaves no lag and nothing in flight behind (the next leader reads the row again), so
// a replica that lost the lease does not report a lag that grows for ever.
func TestTermEndClearsLagAndInFlight(t *testing.T) {
	h := newHarness(t)
	h.broker.setFail(func(kafkago.Message) error { return errors.New("broker down") })
	env := h.event(newAgg(), 1)
	h.submitRaw(env.AggregateID, 1, env.EventID, mustMarshal(t, env))
	time.Sleep(200 * time.Millisecond)
	if testutilGauge(h.metrics.InFlight) != 1 {
		t.Fatalf("in flight %v, want 1", testutilGauge(h.metrics.InFlight))
	}
	h.cancel()
	<-h.done
	families, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "ordersys_relay_lag_seconds" && f.GetMetric()[0].GetGauge().GetValue() != 0 {
			t.Fatalf("lag %v after the term ended, want 0", f.GetMetric()[0].GetGauge().GetValue())
		}
	}
	if v := testutilGauge(h.metrics.InFlight); v != 0 {
		t.Fatalf("in flight %v after the term ended, want 0", v)
	}
}
