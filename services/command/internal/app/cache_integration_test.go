package app

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
)

// TestCachedStateFollowsOtherWriters runs two services (two replicas) on one store, alternating
// commands on one order, so that each one's cached order goes stale, and checks that every
// cached state ends equal to the replay of the log, that stale caches cost a retry rather than
// a wrong decision, and that a rule check is made on the current state.
func TestCachedStateFollowsOtherWriters(t *testing.T) {
	session, _ := cqltest.Keyspace(t)
	store := cql.NewEventStore(session, codec.NewRegistry(), cql.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	a := NewOrderHandler(NewService(store, Options{MaxRetries: 3, SnapshotEvery: 3}), codec.OrderSnapshotCodec{}, nil)
	b := NewOrderHandler(NewService(store, Options{MaxRetries: 3, SnapshotEvery: 3}), codec.OrderSnapshotCodec{}, nil)
	id := ids.New()
	item := func(q int32) []order.Item {
		return []order.Item{{ProductID: ids.New(), Quantity: q, UnitPriceCents: 10}}
	}
	exec := func(h *OrderHandler, cmd order.Command) (Result, error) {
		return h.Execute(ctx, Request[order.Command]{AggregateID: id, Command: cmd, Name: "test"})
	}
	if _, err := exec(a, order.Create{Customer: order.CustomerActive, OrderID: id, CustomerID: ids.New(), Items: item(1)}); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		h := []*OrderHandler{a, b}[i%2]
		res, err := exec(h, order.UpdateItems{Items: item(int32(i + 2))})
		if err != nil || res.Version != int64(i+2) {
			t.Fatalf("update %d: %+v %v", i, res, err)
		}
	}
	// b's cache is at 8, the order at 9 (a's last update); a rule must see the current state.
	if _, err := exec(a, order.Confirm{}); err != nil {
		t.Fatal(err)
	}
	if _, err := exec(b, order.UpdateItems{Items: item(50)}); err == nil {
		t.Fatal("items updated on a confirmed order through a stale cache")
	}

	var log []es.Envelope
	if _, err := store.Load(ctx, id, 1, func(e es.Envelope) error { log = append(log, e); return nil }); err != nil {
		t.Fatal(err)
	}
	replayed := order.New(id)
	if err := es.Replay(replayed, log); err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]*OrderHandler{"a": a, "b": b} {
		cached, ok := h.svc.cache.get(h.cacheKey(id))
		if !ok {
			t.Fatalf("%s: order not cached", name)
		}
		if !reflect.DeepEqual(cached, replayed) {
			t.Errorf("%s: cached %+v\nreplayed %+v", name, cached, replayed)
		}
	}
	if err := a.svc.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.svc.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}
