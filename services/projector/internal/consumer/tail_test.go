package consumer

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

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/services/projector/internal/app"
)

// tailHandler is an app.Finisher whose write step succeeds and whose tail (then) each test
// chooses; it logs what it does, in order.
type tailHandler struct {
	// then returns the tail of the message of aggregate id and sequence seq (nil: none).
	then func(id string, seq int64) func(context.Context) error
	// project answers Project: the re-projection after a failed tail (a duplicate by default).
	project func(ctx context.Context, env es.Envelope) (app.Result, error)

	mu  sync.Mutex
	log []string
}

func (h *tailHandler) note(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log = append(h.log, fmt.Sprintf(format, args...))
}

func (h *tailHandler) logged() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.log)
}

func (h *tailHandler) Project(ctx context.Context, env es.Envelope) (app.Result, error) {
	h.note("project %s#%d", env.AggregateID, env.Sequence)
	if h.project != nil {
		return h.project(ctx, env)
	}
	return app.Result{Duplicate: true}, nil
}

func (h *tailHandler) ProjectThen(_ context.Context, env es.Envelope) (app.Result, func(context.Context) error, error) {
	h.note("write %s#%d", env.AggregateID, env.Sequence)
	var then func(context.Context) error
	if h.then != nil {
		then = h.then(env.AggregateID, env.Sequence)
	}
	return app.Result{Applied: []string{env.EventType}}, then, nil
}

var _ app.Finisher = (*tailHandler)(nil)

// fakeDLQ records the dead letters sent.
type fakeDLQ struct {
	mu   sync.Mutex
	sent []string // "<offset> <reason>"
}

func (d *fakeDLQ) Record(context.Context, string, kafka.Message, string, error) error { return nil }

func (d *fakeDLQ) Publish(_ context.Context, _ string, m kafka.Message, reason string, _ error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sent = append(d.sent, strconv.FormatInt(m.Offset, 10)+" "+reason)
	return nil
}

func (d *fakeDLQ) letters() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.sent)
}

// testConsumer returns a one-lane consumer of the orders projection through h, with short
// retry pauses and dead letters sent to dlq.
func testConsumer(h app.Handler, dlq *fakeDLQ) *Consumer {
	c := New(Config{Projection: "orders", Version: 1, Handler: h, Registry: codec.NewRegistry(), Metrics: NewMetrics(nil),
		RetryBackoff: time.Millisecond, MaxRetryBackoff: 2 * time.Millisecond, KeyLanes: 1,
		Logger: slog.New(slog.DiscardHandler)})
	c.dlq = dlq
	return c
}

// orderMessage renders an OrderCreated of order id, at sequence seq, as the relay publishes it
// at offset.
func orderMessage(t *testing.T, id string, seq, offset int64) kafka.Message {
	t.Helper()
	o := order.New(id)
	ev := order.OrderCreated{OrderID: id, CustomerID: ids.New(), TotalCents: 100,
		Items: []order.Item{{ProductID: ids.New(), Quantity: 1, UnitPriceCents: 100}}}
	env := es.NewEnvelopes(o, []es.Event{ev}, es.Metadata{}, time.Now().UTC(), ids.New)[0]
	env.Sequence = seq
	if err := codec.NewRegistry().EncodeEnvelope(&env); err != nil {
		t.Fatal(err)
	}
	b, err := codec.MarshalEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Topic: "order-events", Offset: offset, Key: []byte(id), Value: b, Headers: []kafka.Header{
		{Key: headerEventType, Value: []byte(env.EventType)},
		{Key: headerAggregateID, Value: []byte(id)},
		{Key: headerSequence, Value: []byte(strconv.FormatInt(seq, 10))},
	}}
}

// lane is one runLane under test: messages go in on msgs, the offsets done with come out of
// finished; cancel ends the lane's context (a rebalance or shutdown).
type lane struct {
	msgs     chan kafka.Message
	cancel   context.CancelFunc
	returned chan struct{}

	mu       sync.Mutex
	finished []int64
	stopped  bool
}

func startLane(t *testing.T, c *Consumer) *lane {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &lane{msgs: make(chan kafka.Message, keyLaneDepth), cancel: cancel, returned: make(chan struct{})}
	stop := func() {
		l.mu.Lock()
		l.stopped = true
		l.mu.Unlock()
		cancel()
	}
	go func() {
		defer close(l.returned)
		c.runLane(context.Background(), ctx, stop, l.msgs, func(m kafka.Message) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.finished = append(l.finished, m.Offset)
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-l.returned:
		case <-time.After(10 * time.Second):
			t.Error("the lane did not return")
		}
	})
	return l
}

// end closes the lane's input and waits for runLane to return; it returns the offsets done
// with and whether the lane stopped.
func (l *lane) end(t *testing.T) ([]int64, bool) {
	t.Helper()
	close(l.msgs)
	select {
	case <-l.returned:
	case <-time.After(10 * time.Second):
		t.Fatal("the lane did not return")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.finished), l.stopped
}

// waitFor waits until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// blockingTail returns a tail that says it started and then fails when its context ends.
func blockingTail(started chan<- struct{}) func(context.Context) error {
	return func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}
}

// TestTailCutShortLeavesTheMessageUndone: when the lane's context ends while a message's tail
// (the re-read after the order write) runs, the message is not done with: its offset must not
// be committed, the next owner redoes it.
func TestTailCutShortLeavesTheMessageUndone(t *testing.T) {
	started := make(chan struct{})
	a := ids.New()
	h := &tailHandler{then: func(string, int64) func(context.Context) error { return blockingTail(started) }}
	c := testConsumer(h, &fakeDLQ{})
	l := startLane(t, c)
	l.msgs <- orderMessage(t, a, 1, 10)
	<-started
	l.cancel()
	finished, _ := l.end(t)
	if len(finished) != 0 {
		t.Fatalf("offsets done with: %v, want none (the re-read was cut short)", finished)
	}
	if n := testutil.ToFloat64(c.cfg.Metrics.Applied.WithLabelValues("orders", "1", order.EventOrderCreated)); n != 0 {
		t.Fatalf("%v events counted applied, want 0", n)
	}
}

// TestPoisonTailIsDeadLettered: a permanent failure of the tail sends the message to the
// dead-letter topic (then it is done with), as a permanent failure of the write would.
func TestPoisonTailIsDeadLettered(t *testing.T) {
	a := ids.New()
	h := &tailHandler{then: func(string, int64) func(context.Context) error {
		return func(context.Context) error {
			return app.Poison(app.ReasonUnreadableRow, errors.New("contact row unreadable"))
		}
	}}
	dlq := &fakeDLQ{}
	c := testConsumer(h, dlq)
	l := startLane(t, c)
	l.msgs <- orderMessage(t, a, 1, 10)
	finished, stopped := l.end(t)
	if got := dlq.letters(); !slices.Equal(got, []string{"10 " + app.ReasonUnreadableRow}) {
		t.Fatalf("dead letters %v, want [10 %s]", got, app.ReasonUnreadableRow)
	}
	if !slices.Equal(finished, []int64{10}) || stopped {
		t.Fatalf("offsets done with %v (lane stopped: %v), want [10], the lane going on", finished, stopped)
	}
	if n := testutil.ToFloat64(c.cfg.Metrics.DeadLetters.WithLabelValues("orders", "1", app.ReasonUnreadableRow)); n != 1 {
		t.Fatalf("dead letters counted: %v, want 1", n)
	}
}

// TestNextMessageOfTheOrderWaitsForItsTail: while a message's tail runs, the lane projects the
// next message of another order, but not the next one of the same order, which waits for it.
func TestNextMessageOfTheOrderWaitsForItsTail(t *testing.T) {
	a, b := ids.New(), ids.New()
	started, release := make(chan struct{}), make(chan struct{})
	h := &tailHandler{}
	h.then = func(id string, seq int64) func(context.Context) error {
		if id != a || seq != 1 {
			return nil
		}
		return func(context.Context) error {
			close(started)
			<-release
			h.note("tail %s#1 done", a)
			return nil
		}
	}
	c := testConsumer(h, &fakeDLQ{})
	l := startLane(t, c)
	l.msgs <- orderMessage(t, a, 1, 10)
	l.msgs <- orderMessage(t, b, 1, 11)
	l.msgs <- orderMessage(t, a, 2, 12)
	<-started
	waitFor(t, "the other order's message", func() bool { return slices.Contains(h.logged(), "write "+b+"#1") })
	time.Sleep(50 * time.Millisecond) // time enough for the lane to go on, were it to
	if slices.Contains(h.logged(), "write "+a+"#2") {
		t.Fatalf("the order's next message projected while its tail runs: %v", h.logged())
	}
	close(release)
	finished, stopped := l.end(t)
	want := []string{"write " + a + "#1", "write " + b + "#1", "tail " + a + "#1 done", "write " + a + "#2"}
	if got := h.logged(); !slices.Equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	if !slices.Equal(finished, []int64{10, 11, 12}) || stopped {
		t.Fatalf("offsets done with %v (lane stopped: %v), want [10 11 12]", finished, stopped)
	}
}

// TestFailedTailHoldsTheNextMessage: a message of another order projected while a tail runs is
// not done with before that tail succeeded; when the tail fails (the context ends) neither is,
// and the lane stops.
func TestFailedTailHoldsTheNextMessage(t *testing.T) {
	a, b := ids.New(), ids.New()
	started := make(chan struct{})
	h := &tailHandler{then: func(id string, _ int64) func(context.Context) error {
		if id != a {
			return nil
		}
		return blockingTail(started)
	}}
	c := testConsumer(h, &fakeDLQ{})
	l := startLane(t, c)
	l.msgs <- orderMessage(t, a, 1, 10)
	l.msgs <- orderMessage(t, b, 1, 11)
	<-started
	waitFor(t, "the next message", func() bool { return slices.Contains(h.logged(), "write "+b+"#1") })
	time.Sleep(20 * time.Millisecond)
	l.mu.Lock()
	early := slices.Clone(l.finished)
	l.mu.Unlock()
	if len(early) != 0 {
		t.Fatalf("offsets done with while the first message's tail runs: %v", early)
	}
	l.cancel()
	finished, stopped := l.end(t)
	if len(finished) != 0 || !stopped {
		t.Fatalf("offsets done with %v (lane stopped: %v), want none and a stopped lane", finished, stopped)
	}
}

// TestRetriedTailCountsTheWrite: when the tail fails transiently and the message's
// re-projection (a duplicate) succeeds, the metrics count what the write applied, not a
// duplicate.
func TestRetriedTailCountsTheWrite(t *testing.T) {
	a := ids.New()
	h := &tailHandler{then: func(string, int64) func(context.Context) error {
		return func(context.Context) error { return fmt.Errorf("contact read: %w", es.ErrUnavailable) }
	}}
	c := testConsumer(h, &fakeDLQ{})
	l := startLane(t, c)
	l.msgs <- orderMessage(t, a, 1, 10)
	finished, stopped := l.end(t)
	if !slices.Equal(finished, []int64{10}) || stopped {
		t.Fatalf("offsets done with %v (lane stopped: %v), want [10]", finished, stopped)
	}
	if got := h.logged(); !slices.Equal(got, []string{"write " + a + "#1", "project " + a + "#1"}) {
		t.Fatalf("steps %v, want the write then one re-projection", got)
	}
	m := c.cfg.Metrics
	applied := testutil.ToFloat64(m.Applied.WithLabelValues("orders", "1", order.EventOrderCreated))
	dups := testutil.ToFloat64(m.Duplicates.WithLabelValues("orders", "1"))
	retries := testutil.ToFloat64(m.Retries.WithLabelValues("orders", "1"))
	if applied != 1 || dups != 0 || retries != 1 {
		t.Fatalf("applied %v, duplicates %v, retries %v; want 1, 0, 1", applied, dups, retries)
	}
}
