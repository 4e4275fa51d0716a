package app

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/domain/customer"
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

	svcA, svcB := NewService(store, Options{MaxRetries: 3, SnapshotEvery: 3}), NewService(store, Options{MaxRetries: 3, SnapshotEvery: 3})
	a := NewOrderHandler(svcA, codec.OrderSnapshotCodec{}, NewCustomerHandler(svcA, codec.CustomerSnapshotCodec{}))
	b := NewOrderHandler(svcB, codec.OrderSnapshotCodec{}, NewCustomerHandler(svcB, codec.CustomerSnapshotCodec{}))
	customerID := register(ctx, t, NewCustomerHandler(svcA, nil))
	id := ids.New()
	item := func(q int32) []order.Item {
		return []order.Item{{ProductID: ids.New(), Quantity: q, UnitPriceCents: 10}}
	}
	exec := func(h *OrderHandler, cmd order.Command) (Result, error) {
		return h.Execute(ctx, Request[order.Command]{AggregateID: id, Command: cmd, Name: "test"})
	}
	if _, err := exec(a, order.Create{OrderID: id, CustomerID: customerID, Items: item(1)}); err != nil {
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

// register registers a new customer through h and returns its id.
func register(ctx context.Context, t *testing.T, h *CustomerHandler) string {
	t.Helper()
	id := ids.New()
	_, err := h.Execute(ctx, Request[customer.Command]{AggregateID: id, Name: "RegisterCustomer",
		Command: customer.Register{CustomerID: id, Email: "c@example.com", FirstName: "C", LastName: "D"}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestCreateOrderReadsTheCustomerFromTheStore: an order is refused for a customer that was
// never registered, and for one another process suspended after this process cached it
// active: the standing is read through the event store (cache caught up), not a read model.
func TestCreateOrderReadsTheCustomerFromTheStore(t *testing.T) {
	session, _ := cqltest.Keyspace(t)
	store := cql.NewEventStore(session, codec.NewRegistry(), cql.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	svcA, svcB := NewService(store, Options{MaxRetries: 3}), NewService(store, Options{MaxRetries: 3})
	customersA, customersB := NewCustomerHandler(svcA, nil), NewCustomerHandler(svcB, nil)
	orders := NewOrderHandler(svcA, nil, customersA)
	create := func(customerID string) error {
		id := ids.New()
		_, err := orders.Execute(ctx, Request[order.Command]{AggregateID: id, Name: "CreateOrder",
			Command: order.Create{OrderID: id, CustomerID: customerID, Items: []order.Item{{ProductID: ids.New(), Quantity: 1}}}})
		return err
	}
	wantRule := func(err error, rule, customerID string) {
		t.Helper()
		var re *es.RuleError
		if !errors.As(err, &re) || re.Rule != rule || re.Subject != customerID {
			t.Fatalf("got %v, want rule %s about %s", err, rule, customerID)
		}
	}
	missing := ids.New()
	wantRule(create(missing), order.RuleCreateCustomerExists, missing)

	c := register(ctx, t, customersA)
	if err := create(c); err != nil { // cached active in process A now
		t.Fatal(err)
	}
	if _, err := customersB.Execute(ctx, Request[customer.Command]{AggregateID: c, Name: "SuspendCustomer",
		Command: customer.Suspend{Reason: "fraud check"}}); err != nil {
		t.Fatal(err)
	}
	wantRule(create(c), order.RuleCreateCustomerActive, c)
	if _, err := customersB.Execute(ctx, Request[customer.Command]{AggregateID: c, Name: "ReactivateCustomer",
		Command: customer.Reactivate{}}); err != nil {
		t.Fatal(err)
	}
	if err := create(c); err != nil {
		t.Fatalf("reactivated customer: %v", err)
	}
	if _, err := customersB.Execute(ctx, Request[customer.Command]{AggregateID: c, Name: "DeactivateCustomer",
		Command: customer.Deactivate{Reason: "closed"}}); err != nil {
		t.Fatal(err)
	}
	wantRule(create(c), order.RuleCreateCustomerActive, c)
}
