package command_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

// FuzzOrderRoundTrip is the contract between the edge and everything downstream: whatever
// order commands the real command service accepts (ids, texts, counts and amounts chosen by the
// fuzzer, boundary values in the seed corpus under testdata/fuzz) produce events that the rest
// of the system takes. Each accepted command's stored events are read back from Cassandra and
// put through the steps the relay and the projector apply, with the same shared functions: the
// outbox encoding (codec.MarshalEnvelope), the relay's decode and envelope contract
// (codec.UnmarshalEnvelope, es.Envelope.Check, the row's canonical aggregate id), the
// projector's decode (the registry), replay into the order, and the read-model write and read
// on the real tables. Nothing accepted may fail there. `go test` runs the seeds; `make test`
// also fuzzes for a short while (FUZZTIME).
func FuzzOrderRoundTrip(f *testing.F) {
	long := func(n int) string { return strings.Repeat("é", n) }
	f.Add("", uint8(0), "", int32(1), int64(1), uint8(1), "changed my mind", "1Z999", false)
	f.Add(ids.Nil, uint8(0), "", int32(1), int64(1), uint8(1), "r", "t", true)  // the nil order id
	f.Add("", uint8(1), "", int32(1), int64(1), uint8(1), "r", "t", false)      // the nil customer id
	f.Add("", uint8(2), "", int32(1), int64(1), uint8(1), "r", "t", false)      // an unregistered customer
	f.Add("", uint8(0), ids.Nil, int32(1), int64(1), uint8(1), "r", "t", false) // the nil product id
	f.Add(strings.ToUpper(ids.New()), uint8(0), strings.ToUpper(ids.New()), int32(1), int64(0), uint8(1), " r ", " t ", true)
	f.Add("", uint8(0), "", int32(order.MaxQuantity), order.MaxUnitPriceCents, uint8(order.MaxItems), long(order.MaxReasonLen), long(order.MaxShippingFieldLen), true)
	f.Add("", uint8(0), "", int32(1), int64(1<<63-1), uint8(1), "r", "t", false) // 2^63-1 cents
	f.Add("", uint8(0), "", int32(order.MaxQuantity+1), int64(1), uint8(1), "", "", false)
	f.Add("", uint8(0), "", int32(1), int64(1), uint8(order.MaxItems+1), long(order.MaxReasonLen+1), "t\x00", true)
	f.Add("", uint8(0), "", int32(1), int64(1), uint8(1), "", "t", false)                    // empty reason
	f.Add("", uint8(0), "", int32(2), int64(3), uint8(2), "a\x00b\u202e", "t\x00\x1b", true) // NUL, escape and bidi characters in free text

	rt := newRoundTrip(f)
	f.Fuzz(func(t *testing.T, orderID string, customerPick uint8, productID string, qty int32, price int64, n uint8, text, tracking string, ship bool) {
		for _, s := range []string{orderID, productID, text, tracking} {
			if !utf8.ValidString(s) {
				t.Skip("proto3 strings are UTF-8: no gRPC client can send this")
			}
		}
		rt.run(t, orderID, customerPick, productID, qty, price, n, text, tracking, ship)
	})
}

// TestOrderRoundTripAcceptedPaths runs the fuzz body on inputs that every rule allows and
// requires every command to be accepted, so the round trip cannot pass by refusing everything.
func TestOrderRoundTripAcceptedPaths(t *testing.T) {
	rt := newRoundTrip(t)
	for _, ship := range []bool{false, true} {
		if got, want := rt.run(t, strings.ToUpper(ids.New()), 0, strings.ToUpper(ids.New()), 3, 1999, 4, " a reason ", "1Z999", ship), 3+2*btoi(ship); got != want {
			t.Fatalf("ship=%v: %d commands accepted, want %d", ship, got, want)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// roundTrip is the fixture of the round-trip tests: a server, an ACTIVE customer, the real
// read-model tables and the event registry.
type roundTrip struct {
	s        *server
	customer string
	rm       readModels
	reg      *es.Registry
}

func newRoundTrip(t testing.TB) *roundTrip {
	s := defaultServer(t)
	return &roundTrip{s: s, customer: registerCustomer(t, s), rm: newReadModels(t), reg: codec.NewRegistry()}
}

// run creates an order from the inputs, then updates its items, and cancels it or confirms,
// ships and delivers it; each command may be refused. Whatever was accepted goes downstream.
// It returns how many commands were accepted.
func (rt *roundTrip) run(t *testing.T, orderID string, customerPick uint8, productID string, qty int32, price int64, n uint8, text, tracking string, ship bool) int {
	t.Helper()
	s, ctx := rt.s, ctxT(t)
	if orderID == "" {
		orderID = ids.New()
	}
	customerID := []string{rt.customer, ids.Nil, ids.New()}[int(customerPick)%3]
	var lines []*ordersv1.OrderItem
	for i := 0; i < int(n)%(order.MaxItems+2); i++ {
		p := ids.New()
		if i == 0 && productID != "" {
			p = productID
		}
		lines = append(lines, &ordersv1.OrderItem{ProductId: p, Quantity: qty, UnitPriceCents: price})
	}
	resp, err := s.oc.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: orderID, CustomerId: customerID, Items: lines})
	if !accepted(t, "CreateOrder", err) {
		return 0
	}
	id := resp.GetAggregateId()
	// The update swaps the first line's product, so it always changes the items.
	updated := append([]*ordersv1.OrderItem{{ProductId: ids.New(), Quantity: qty, UnitPriceCents: price}}, lines[1:]...)
	steps := []func() error{
		func() error {
			_, err := s.oc.UpdateOrderItems(ctx, &ordersv1.UpdateOrderItemsRequest{OrderId: orderID, Items: updated, Reason: text})
			return err
		},
	}
	if ship {
		steps = append(steps,
			func() error {
				_, err := s.oc.ConfirmOrder(ctx, &ordersv1.ConfirmOrderRequest{OrderId: orderID})
				return err
			},
			func() error {
				_, err := s.oc.ShipOrder(ctx, &ordersv1.ShipOrderRequest{OrderId: orderID, TrackingNumber: tracking, Carrier: text})
				return err
			},
			func() error {
				_, err := s.oc.DeliverOrder(ctx, &ordersv1.DeliverOrderRequest{OrderId: orderID, Signature: tracking})
				return err
			})
	} else {
		steps = append(steps, func() error {
			_, err := s.oc.CancelOrder(ctx, &ordersv1.CancelOrderRequest{OrderId: orderID, Reason: text})
			return err
		})
	}
	n2 := 1
	for i, step := range steps { // a refused step does not stop the later ones
		if accepted(t, fmt.Sprintf("step %d", i+1), step()) {
			n2++
		}
	}
	downstream(t, env(t).store, rt.reg, rt.rm, id)
	return n2
}

// accepted reports whether a command succeeded; a refusal must be one of the answers a client
// can act on (never Internal or Unknown).
func accepted(t *testing.T, what string, err error) bool {
	t.Helper()
	switch status.Code(err) {
	case codes.OK:
		return true
	case codes.InvalidArgument, codes.FailedPrecondition, codes.AlreadyExists, codes.NotFound:
		return false
	default:
		t.Fatalf("%s: %v: a command is either accepted or refused with a precise code", what, err)
		return false
	}
}

// readModels are the real read-model tables the downstream check writes, as the projector does.
type readModels struct {
	orders    readmodel.OrderTables
	customers readmodel.CustomerTables
}

// newReadModels creates version 1 of both projections' tables in the test keyspace.
func newReadModels(t testing.TB) readModels {
	t.Helper()
	for _, p := range readmodel.Projections() {
		if err := readmodel.CreateTables(ctxT(t), env(t).session, p, 1); err != nil {
			t.Fatal(err)
		}
	}
	return readModels{orders: readmodel.NewOrderTables(env(t).session, 1), customers: readmodel.NewCustomerTables(env(t).session, 1)}
}

// downstream puts every stored event of the aggregate through the relay's and the projector's
// steps and checks that the read model ends equal to the event store's replay.
func downstream(t *testing.T, store *cql.EventStore, reg *es.Registry, rm readModels, id string) {
	t.Helper()
	ctx := ctxT(t)
	raw, err := store.LoadRaw(ctx, id, 1, 1<<62)
	if err != nil || len(raw) == 0 {
		t.Fatalf("load %s: %d events, %v", id, len(raw), err)
	}
	var (
		agg      es.Aggregate
		save     func() error
		readBack func() (es.Aggregate, error)
	)
	switch raw[0].AggregateType {
	case order.AggregateType:
		o := order.New(id)
		var prev *readmodel.Order
		agg = o
		save = func() error {
			cp := *o
			next := readmodel.Order{State: &cp}
			err := rm.orders.Save(ctx, prev, next)
			prev = &next
			return err
		}
		readBack = func() (es.Aggregate, error) {
			got, err := rm.orders.Get(ctx, id)
			return got.State, err
		}
	case customer.AggregateType:
		c := customer.New(id)
		agg = c
		save = func() error { return rm.customers.Save(ctx, c) }
		readBack = func() (es.Aggregate, error) { return rm.customers.Get(ctx, id) }
	default:
		t.Fatalf("%s: unknown aggregate type %q", id, raw[0].AggregateType)
	}
	for _, stored := range raw {
		// The outbox row and the Kafka record value.
		value, err := codec.MarshalEnvelope(stored)
		if err != nil {
			t.Fatalf("outbox encoding of %s: %v", stored, err)
		}
		// The relay: decode, the shared envelope contract, the row's identity.
		env, err := codec.UnmarshalEnvelope(value)
		if err == nil {
			err = env.CheckRow(id, stored.Sequence, stored.EventID)
		}
		if err != nil {
			t.Fatalf("the relay would dead-letter an accepted event: %v", err)
		}
		// The projector: decode the payload, apply, write the read model.
		if err := reg.DecodeEnvelope(&env); err != nil {
			t.Fatalf("the projector would dead-letter an accepted event: %v", err)
		}
		if err := es.ApplyEnvelope(agg, env); err != nil {
			t.Fatalf("the projector cannot apply an accepted event %s: %v", env, err)
		}
		if err := save(); err != nil {
			t.Fatalf("read-model write of %s: %v", env, err)
		}
	}
	got, err := readBack()
	if err != nil {
		t.Fatalf("read model of %s: %v", id, err)
	}
	if !reflect.DeepEqual(got, agg) {
		t.Fatalf("read model of %s differs from the replay:\n got %+v\nwant %+v", id, got, agg)
	}
}
