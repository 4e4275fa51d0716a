package app

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/es/esmem"
)

// loadWatch is the in-memory event store recording where each Load starts; when gated, its
// snapshot read waits until a Load has begun (an answer that only comes once the events are
// being read too).
type loadWatch struct {
	*esmem.Store
	gated atomic.Bool
	mu    sync.Mutex
	froms []int64
	ids   []string // of each Load
}

func (w *loadWatch) Load(ctx context.Context, id string, from int64, fn func(es.Envelope) error) (es.StreamHead, error) {
	w.mu.Lock()
	w.froms = append(w.froms, from)
	w.ids = append(w.ids, id)
	w.mu.Unlock()
	return w.Store.Load(ctx, id, from, fn)
}

func (w *loadWatch) LatestSnapshot(ctx context.Context, id string, maxVersion int64) (es.Snapshot, error) {
	if w.gated.Load() {
		for deadline := time.Now().Add(5 * time.Second); len(w.loads()) == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				return es.Snapshot{}, errors.New("the snapshot read waited 5 s for a read of the events that never began beside it")
			}
		}
	}
	return w.Store.LatestSnapshot(ctx, id, maxVersion)
}

func (w *loadWatch) loads() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int64(nil), w.froms...)
}

func (w *loadWatch) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.froms, w.ids = nil, nil
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
// the events after it, two round trips even for the many aggregates that have no snapshot. Now
// the events are read from the first beside the snapshot read (here the snapshot read answers
// only once the events are being read: before, the load failed), and what the load returns is
// the aggregate at its version whether there is no snapshot, a stream longer than the
// replay's bound without one, or a snapshot.
func TestLoadReadsEventsBesideTheSnapshot(t *testing.T) {
	w := &loadWatch{Store: esmem.New(codec.NewRegistry())}
	const every = 5
	svc := NewService(w, Options{SnapshotEvery: every})
	h := NewOrderHandler(svc, codec.OrderSnapshotCodec{}, NewCustomerHandler(svc, nil))
	ctx := context.Background()

	check := func(name string, want *order.Order, wantFroms []int64) {
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
		if froms := w.loads(); len(froms) != len(wantFroms) || froms[0] != wantFroms[0] || froms[len(froms)-1] != wantFroms[len(wantFroms)-1] {
			t.Errorf("%s: events read from %v, want %v", name, froms, wantFroms)
		}
	}

	check("no snapshot, a short stream: one read", appendOrder(t, w, 3), []int64{1})
	check("no snapshot, as long as the bound: one read", appendOrder(t, w, every), []int64{1})
	check("no snapshot, one event past the bound: read on", appendOrder(t, w, every+1), []int64{1, every + 1})
	check("no snapshot, a stream longer than the bound: read on", appendOrder(t, w, 2*every+1), []int64{1, every + 1})

	long := appendOrder(t, w, 2*every+2)
	at := long.Version() - 2
	envs, err := w.LoadRange(ctx, long.AggregateID(), 1, at)
	if err != nil {
		t.Fatal(err)
	}
	mid := order.New(long.AggregateID())
	if err := es.Replay(mid, envs); err != nil {
		t.Fatal(err)
	}
	state, err := codec.OrderSnapshotCodec{}.Take(mid)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SaveSnapshot(ctx, es.Snapshot{AggregateID: long.AggregateID(), AggregateType: order.AggregateType, Version: at,
		SchemaVersion: codec.SnapshotSchemaVersion, State: state, TakenAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	check("a snapshot: the events after it", long, []int64{1, at + 1})
}
