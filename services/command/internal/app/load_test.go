package app

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/codec/codectest"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/es/esmem"
)

// loadWatch is the in-memory event store recording the reads of events (LoadLast and Load);
// when gated, its snapshot read answers only once a read of events has returned (an answer
// that comes only if the events are read beside it); after, when set, runs once after the
// next LoadLast.
type loadWatch struct {
	*esmem.Store
	gated atomic.Bool
	after func()
	mu    sync.Mutex
	reads []string // "last <n>" or "from <sequence>"
	ids   []string // of each read
}

func (w *loadWatch) read(id, what string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reads = append(w.reads, what)
	w.ids = append(w.ids, id)
}

func (w *loadWatch) Load(ctx context.Context, id string, from int64, fn func(es.Envelope) error) (es.StreamHead, error) {
	head, err := w.Store.Load(ctx, id, from, fn)
	w.read(id, "from "+strconv.FormatInt(from, 10))
	return head, err
}

func (w *loadWatch) LoadLast(ctx context.Context, id string, n int) ([]es.Envelope, es.StreamHead, error) {
	envs, head, err := w.Store.LoadLast(ctx, id, n)
	if w.after != nil {
		w.after()
		w.after = nil
	}
	w.read(id, "last "+strconv.Itoa(n))
	return envs, head, err
}

func (w *loadWatch) LatestSnapshot(ctx context.Context, id string, maxVersion int64) (es.Snapshot, error) {
	if w.gated.Load() {
		for deadline := time.Now().Add(5 * time.Second); len(w.loads()) == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				return es.Snapshot{}, errors.New("the snapshot read waited 5 s for a read of the events beside it")
			}
		}
	}
	return w.Store.LatestSnapshot(ctx, id, maxVersion)
}

func (w *loadWatch) loads() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.reads)
}

func (w *loadWatch) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reads, w.ids = nil, nil
}

func (w *loadWatch) loaded(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Contains(w.ids, id)
}

// appendOrder writes an order of n events straight to the store (no snapshot) and returns it.
func appendOrder(t *testing.T, st es.EventStore, n int) *order.Order {
	t.Helper()
	id := ids.New()
	o := order.New(id)
	for k := 0; k < n; k++ {
		var cmd order.Command = order.UpdateItems{Items: memItems(int32(k + 1))}
		if k == 0 {
			cmd = order.Create{OrderID: id, CustomerID: ids.New(), Items: memItems(1), Customer: order.CustomerActive}
		}
		evs, err := o.Decide(cmd, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		envs := es.NewEnvelopes(o, evs, es.Metadata{CausationID: ids.New()}, time.Now().UTC().Truncate(time.Millisecond), ids.New)
		if _, err := st.Append(context.Background(), es.AppendRequest{AggregateID: id, AggregateType: order.AggregateType,
			ExpectedVersion: o.Version(), Events: envs}); err != nil {
			t.Fatal(err)
		}
		if err := es.Replay(o, envs); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

// TestLoadReadsEventsBesideTheSnapshot: a load used to read the newest snapshot and only then
// the events after it, two round trips. Then the events were read from the first beside the
// snapshot read: one round trip for an aggregate without a snapshot, still two (and a page of
// events dropped) for one with. Now the stream's last events (es.SnapshotTail of them) are
// read beside the snapshot read (here the snapshot read answers only once they have been read:
// done one after the other, the load fails), which covers both in one round trip. The events
// after the snapshot are read as a second round trip only when the last events do not reach
// back to the snapshot, or the snapshot is newer than the head read beside it. Each case
// returns the aggregate at its version with the head of that version.
func TestLoadReadsEventsBesideTheSnapshot(t *testing.T) {
	w := &loadWatch{Store: esmem.New(codec.NewRegistry())}
	const every = 5
	tail := es.SnapshotTail(every)
	last := "last " + strconv.Itoa(tail)
	svc := NewService(w, Options{SnapshotEvery: every})
	h := NewOrderHandler(svc, codec.OrderSnapshotCodec{}, NewCustomerHandler(svc, nil))
	ctx := context.Background()

	check := func(name string, want *order.Order, wantReads ...string) {
		t.Helper()
		w.reset()
		w.gated.Store(true)
		got, head, err := h.load(ctx, want.AggregateID())
		w.gated.Store(false)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if head.Version != want.Version() {
			t.Errorf("%s: stream head at version %d, want %d", name, head.Version, want.Version())
		}
		if got.Version() != want.Version() || got.TotalCents != want.TotalCents || len(got.Items) != len(want.Items) {
			t.Errorf("%s: loaded version %d, total %d; want %d, %d", name, got.Version(), got.TotalCents, want.Version(), want.TotalCents)
		}
		if reads := w.loads(); !slices.Equal(reads, wantReads) {
			t.Errorf("%s: events read %q, want %q", name, reads, wantReads)
		}
	}

	check("no snapshot, a short stream: one read", appendOrder(t, w, 3), last)
	check("no snapshot, as long as the last events read: one read", appendOrder(t, w, tail), last)
	check("no snapshot, one event longer: every event read again", appendOrder(t, w, tail+1), last, "from 1")

	near := appendOrder(t, w, 3*every+2)
	codectest.SaveOrderSnapshot(ctx, t, w, near.AggregateID(), 3*every)
	check("a snapshot among the last events: one read", near, last)

	far := appendOrder(t, w, every+tail+2)
	codectest.SaveOrderSnapshot(ctx, t, w, far.AggregateID(), every)
	check("a snapshot older than the last events: the events after it", far, last, "from "+strconv.Itoa(every+1))

	// Between the last events read and the snapshot read, another replica appends and
	// snapshots the version it appended: the snapshot is newer than the head read.
	raced := appendOrder(t, w, 2*every)
	w.after = func() {
		evs, err := raced.Decide(order.UpdateItems{Items: memItems(7)}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		envs := es.NewEnvelopes(raced, evs, es.Metadata{CausationID: ids.New()}, time.Now().UTC().Truncate(time.Millisecond), ids.New)
		if _, err := w.Append(ctx, es.AppendRequest{AggregateID: raced.AggregateID(), AggregateType: order.AggregateType,
			ExpectedVersion: raced.Version(), Events: envs}); err != nil {
			t.Fatal(err)
		}
		if err := es.Replay(raced, envs); err != nil {
			t.Fatal(err)
		}
		codectest.SaveOrderSnapshot(ctx, t, w, raced.AggregateID(), raced.Version())
	}
	check("a snapshot newer than the head read beside it: the head read again", raced, last, "from "+strconv.Itoa(2*every+2))
}
