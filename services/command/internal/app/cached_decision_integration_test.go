package app

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
)

// readCounter is an event store that counts the reads made through it.
type readCounter struct {
	es.EventStore
	reads atomic.Int64
}

func (r *readCounter) Load(ctx context.Context, id string, from int64, fn func(es.Envelope) error) (es.StreamHead, error) {
	r.reads.Add(1)
	return r.EventStore.Load(ctx, id, from, fn)
}

func (r *readCounter) LoadLast(ctx context.Context, id string, n int) ([]es.Envelope, es.StreamHead, error) {
	r.reads.Add(1)
	return r.EventStore.LoadLast(ctx, id, n)
}

func (r *readCounter) LoadRange(ctx context.Context, id string, from, to int64) ([]es.Envelope, error) {
	r.reads.Add(1)
	return r.EventStore.LoadRange(ctx, id, from, to)
}

func (r *readCounter) Head(ctx context.Context, id string) (es.StreamHead, error) {
	r.reads.Add(1)
	return r.EventStore.Head(ctx, id)
}

func (r *readCounter) LatestSnapshot(ctx context.Context, id string, maxVersion int64) (es.Snapshot, error) {
	r.reads.Add(1)
	return r.EventStore.LatestSnapshot(ctx, id, maxVersion)
}

// TestCachedOrderIsDecidedWithoutARead: commands (with command ids) on an order this replica
// holds in its cache read nothing from the store, and still record their ids: a repeat returns
// the first outcome. After another replica appended, the next command costs a failed append
// and a read, and succeeds.
func TestCachedOrderIsDecidedWithoutARead(t *testing.T) {
	session, _ := cqltest.Keyspace(t)
	store := cql.NewEventStore(session, codec.NewRegistry(), cql.Options{})
	counted := &readCounter{EventStore: store}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	svc := NewService(counted, Options{MaxRetries: 3, SnapshotEvery: 100})
	h := NewOrderHandler(svc, codec.OrderSnapshotCodec{}, NewCustomerHandler(svc, nil))
	other := NewOrderHandler(NewService(store, Options{MaxRetries: 3}), nil, NewCustomerHandler(NewService(store, Options{}), nil))
	customerID := register(ctx, t, NewCustomerHandler(svc, nil))
	id := ids.New()
	exec := func(h *OrderHandler, commandID string, cmd order.Command) Result {
		t.Helper()
		res, err := h.Execute(ctx, Request[order.Command]{AggregateID: id, Command: cmd, Name: "test",
			CommandID: commandID, Fingerprint: "fp-" + commandID})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	n := int32(0)
	items := func() []order.Item {
		n++
		return []order.Item{{ProductID: ids.New(), Quantity: n, UnitPriceCents: 10}}
	}
	exec(h, ids.New(), order.Create{OrderID: id, CustomerID: customerID, Items: items()})

	before := counted.reads.Load()
	var last string
	for i := range 5 {
		last = ids.New()
		if res := exec(h, last, order.UpdateItems{Items: items()}); res.Version != int64(i+2) {
			t.Fatalf("update %d at version %d", i, res.Version)
		}
	}
	if n := counted.reads.Load() - before; n != 0 {
		t.Fatalf("%d reads for 5 commands on a cached order, want 0", n)
	}
	if res := exec(h, last, order.UpdateItems{Items: items()}); !res.Duplicate || res.Version != 6 {
		t.Fatalf("repeat of the last command: %+v", res)
	}

	exec(other, ids.New(), order.UpdateItems{Items: items()}) // version 7, unseen by h's cache
	before = counted.reads.Load()
	if res := exec(h, ids.New(), order.UpdateItems{Items: items()}); res.Version != 8 {
		t.Fatalf("command on a stale cache at version %d, want 8", res.Version)
	}
	if n := counted.reads.Load() - before; n != 1 {
		t.Fatalf("%d reads for a command on a stale cache, want 1 (the catch-up)", n)
	}
	cached := func(result string) float64 {
		return testutil.ToFloat64(svc.opts.Metrics.cached.WithLabelValues("test", result))
	}
	if cached(cachedAppended) != 5 || cached(cachedStale) != 1 {
		t.Fatalf("cached decisions: %v appended, %v stale; want 5 and 1", cached(cachedAppended), cached(cachedStale))
	}
}
