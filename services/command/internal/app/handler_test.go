package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/es/esmem"
)

// The handler's own logic on the in-memory event store (pkg/es/esmem, which passes the same
// acceptance suite as the CQL store): no server, seconds for all of it.

// memRejections is the rejection log of the CQL store in memory: a rejection of an existing
// aggregate is recorded with its stream (conditionally, so a recorded outcome stands), one of
// an aggregate that does not exist in a table of its own.
type memRejections struct {
	store *esmem.Store
	mu    sync.Mutex
	table map[string]es.Rejection
}

func (m *memRejections) Remember(_ context.Context, aggregateID, commandID string, r es.Rejection) error {
	if r.Version > 0 {
		return m.store.Record(aggregateID, commandID, es.CommandRecord{Fingerprint: r.Fingerprint, FirstSequence: r.Version,
			LastSequence: r.Version, Rejected: true, Rule: r.Rule, Reason: r.Reason}, r.Forget)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.table[aggregateID+"/"+commandID] = r
	return nil
}

func (m *memRejections) Recall(_ context.Context, aggregateID, commandID string) (es.Rejection, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.table[aggregateID+"/"+commandID]
	return r, ok, nil
}

// memReplica is one command service (its own cache) on a shared in-memory store.
type memReplica struct {
	svc    *Service
	orders *OrderHandler
}

func newMemReplica(store *esmem.Store) memReplica {
	svc := NewService(store, Options{MaxRetries: 3, RetryBackoff: time.Millisecond, MaxRetryBackoff: time.Millisecond,
		Rejections: &memRejections{store: store, table: map[string]es.Rejection{}}})
	return memReplica{svc: svc, orders: NewOrderHandler(svc, codec.OrderSnapshotCodec{}, NewCustomerHandler(svc, nil))}
}

// memOrder registers a customer and creates an order through r; it returns the order's id.
func memOrder(t *testing.T, r memReplica) string {
	t.Helper()
	customerID := register(context.Background(), t, NewCustomerHandler(r.svc, nil))
	id := ids.New()
	if _, err := r.exec(id, "", order.Create{OrderID: id, CustomerID: customerID, Items: memItems(1)}); err != nil {
		t.Fatal(err)
	}
	return id
}

func memItems(q int32) []order.Item {
	return []order.Item{{ProductID: ids.New(), Quantity: q, UnitPriceCents: 10}}
}

func (r memReplica) exec(id, commandID string, cmd order.Command) (Result, error) {
	return r.orders.Execute(context.Background(), Request[order.Command]{AggregateID: id, Command: cmd, Name: "test",
		CommandID: commandID, Fingerprint: "fp-" + commandID})
}

func (r memReplica) cached(result string) float64 {
	return testutil.ToFloat64(r.svc.opts.Metrics.cached.WithLabelValues("test", result))
}

func TestHandlerOnMemoryStore(t *testing.T) {
	t.Run("a stale cache costs a read, not a wrong answer", func(t *testing.T) {
		store := esmem.New(codec.NewRegistry())
		a, b := newMemReplica(store), newMemReplica(store)
		id := memOrder(t, a)
		if _, err := b.exec(id, ids.New(), order.UpdateItems{Items: memItems(2)}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.exec(id, ids.New(), order.Confirm{}); err != nil {
			t.Fatal(err)
		}
		// a's cached order is CREATED at 1; it is CONFIRMED at 3: no more item changes.
		_, err := a.exec(id, ids.New(), order.UpdateItems{Items: memItems(3)})
		var re *es.RuleError
		if !errors.As(err, &re) {
			t.Fatalf("items updated through a stale cache: %v", err)
		}
		if a.cached(cachedStale) != 1 {
			t.Fatalf("stale decisions %v, want 1", a.cached(cachedStale))
		}
	})

	t.Run("a repeat on another replica returns the first outcome", func(t *testing.T) {
		store := esmem.New(codec.NewRegistry())
		a, b := newMemReplica(store), newMemReplica(store)
		id := memOrder(t, a)
		cid := ids.New()
		first, err := b.exec(id, cid, order.UpdateItems{Items: memItems(2)})
		if err != nil {
			t.Fatal(err)
		}
		again, err := a.exec(id, cid, order.UpdateItems{Items: memItems(2)})
		if err != nil || !again.Duplicate || again.Version != first.Version || again.EventIDs[0] != first.EventIDs[0] {
			t.Fatalf("repeat: %+v %v, first %+v", again, err, first)
		}
	})

	t.Run("a rejection stands after the aggregate changed", func(t *testing.T) {
		store := esmem.New(codec.NewRegistry())
		a, b := newMemReplica(store), newMemReplica(store)
		id := memOrder(t, a)
		cid := ids.New()
		ship := order.Ship{TrackingNumber: "T", Carrier: "C"}
		if _, err := b.exec(id, cid, ship); err == nil {
			t.Fatal("shipped an order not confirmed")
		}
		if _, err := a.exec(id, ids.New(), order.Confirm{}); err != nil {
			t.Fatal(err)
		}
		_, err := a.exec(id, cid, ship)
		var re *es.RuleError
		if !errors.As(err, &re) || re.Rule != order.RuleShipRequiresConfirmed {
			t.Fatalf("repeat of a rejected command: %v, want its first rejection", err)
		}
		if h, _ := store.Head(context.Background(), id); h.Version != 2 {
			t.Fatalf("version %d, want 2", h.Version)
		}
	})

	t.Run("an unknown outcome is Unavailable and the repeat gets the first outcome", func(t *testing.T) {
		store := esmem.New(codec.NewRegistry())
		a := newMemReplica(store)
		id := memOrder(t, a)
		store.AfterAppend = func(es.AppendRequest) error {
			store.AfterAppend = nil
			return fmt.Errorf("commit timed out: %w", es.ErrUnavailable)
		}
		cid := ids.New()
		if _, err := a.exec(id, cid, order.UpdateItems{Items: memItems(2)}); !errors.Is(err, es.ErrUnavailable) {
			t.Fatalf("unknown outcome: %v, want Unavailable", err)
		}
		res, err := a.exec(id, cid, order.UpdateItems{Items: memItems(2)})
		if err != nil || !res.Duplicate || res.Version != 2 {
			t.Fatalf("repeat after an unknown outcome: %+v %v, want the first outcome at version 2", res, err)
		}
	})

	t.Run("a lost race is decided again", func(t *testing.T) {
		store := esmem.New(codec.NewRegistry())
		a, b := newMemReplica(store), newMemReplica(store)
		id := memOrder(t, a)
		store.BeforeAppend = func(es.AppendRequest) error {
			store.BeforeAppend = nil // b gets in first, once
			_, err := b.exec(id, ids.New(), order.UpdateItems{Items: memItems(5)})
			return err
		}
		res, err := a.exec(id, ids.New(), order.UpdateItems{Items: memItems(6)})
		if err != nil || res.Version != 3 {
			t.Fatalf("after a lost race: %+v %v, want version 3", res, err)
		}
	})

	t.Run("an expected version is not retried", func(t *testing.T) {
		store := esmem.New(codec.NewRegistry())
		a := newMemReplica(store)
		id := memOrder(t, a)
		stale := int64(0)
		_, err := a.orders.Execute(context.Background(), Request[order.Command]{AggregateID: id, Name: "test",
			Command: order.UpdateItems{Items: memItems(2)}, ExpectedVersion: &stale})
		var ce *es.ConflictError
		if !errors.As(err, &ce) || ce.Actual != 1 {
			t.Fatalf("stale expected version: %v, want a conflict at version 1", err)
		}
	})
}
