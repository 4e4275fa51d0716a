package relay_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"
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

func (f *fakeProgress) Load(_ context.Context, aggregateIDs []string) (map[string]int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int64{}
	for _, id := range aggregateIDs {
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
	// lostAnswers: the next Put calls record the dead letter but answer with an error (an
	// unknown outcome).
	lostAnswers int
}

func (f *fakeDLQ) Put(_ context.Context, dl *cql.DeadLetter) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if dl.ID == (gocql.UUID{}) {
		dl.ID = gocql.TimeUUID()
	}
	f.dls = slices.DeleteFunc(f.dls, func(had *cql.DeadLetter) bool { return had.Topic == dl.Topic && had.ID == dl.ID })
	f.dls = append(f.dls, dl)
	if f.lostAnswers > 0 {
		f.lostAnswers--
		return errors.New("timeout (potentially executed)")
	}
	return nil
}

func (f *fakeDLQ) Exists(_ context.Context, topic string, id gocql.UUID) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.ContainsFunc(f.dls, func(had *cql.DeadLetter) bool { return had.Topic == topic && had.ID == id }), nil
}

func (f *fakeDLQ) records() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.dls)
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
	h.start()
	t.Cleanup(h.stop)
	return h
}

// start runs a new pipeline on the harness's fakes (the store, broker and metrics stay).
func (h *harness) start() {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(h.spans))
	h.p = relay.NewPipeline(relay.Config{Lanes: 4, RetryInitial: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond},
		relay.Deps{Progress: h.progress, Events: h.events, DeadLetters: h.dlq, Publisher: h.broker, Metrics: h.metrics,
			Breaker: relay.NewBreaker(relay.BreakerConfig{Failures: 3, OpenTimeout: 100 * time.Millisecond}, h.metrics, nil),
			Tracer:  tp.Tracer("test"), Logger: slog.New(slog.NewJSONHandler(h.logs, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() { _ = h.p.Run(ctx); close(h.done) }()
}

// stop ends the running pipeline (its unsettled changes stay unsettled, as in a stop or a
// handover).
func (h *harness) stop() {
	h.cancel()
	<-h.done
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
	return h.submitChange(&relay.Change{Cursor: "test", AggregateID: agg, AggregateType: "Order", Sequence: seq, EventID: eventID,
		Envelope: envelope, CommittedAt: time.Now()})
}

// submitPoisonRow submits an undecodable outbox row with id row, sequence 1 of agg.
func (h *harness) submitPoisonRow(agg string, row gocql.UUID) *relay.Change {
	return h.submitChange(&relay.Change{Cursor: "test", AggregateID: agg, AggregateType: "Order", Sequence: 1,
		EventID: gocql.TimeUUID().String(), Envelope: []byte{0xff, 0xff, 0xff}, CommittedAt: row.Time(), RowID: row})
}

// submitChange submits c, its outcome recorded in h.outcomes.
func (h *harness) submitChange(c *relay.Change) *relay.Change {
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
