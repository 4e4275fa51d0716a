package command_test

import (
	"slices"
	"testing"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/services/command/internal/app"
)

func TestIdempotency(t *testing.T) {
	s := defaultServer(t)
	ctx := ctxT(t)

	t.Run("same command id twice returns the first outcome", func(t *testing.T) {
		id, cmdID := ids.New(), ids.New()
		req := &ordersv1.CreateOrderRequest{OrderId: id, CustomerId: s.activeCustomer(t), Items: items(2), CommandId: cmdID}
		first, err := s.oc.CreateOrder(ctx, req)
		checkResp(t, first, err, id, 1, 1)
		again, err := s.oc.CreateOrder(ctx, req)
		if err != nil || !proto.Equal(first, again) {
			t.Fatalf("repeat: %v %v, want %v", again, err, first)
		}

		upd := &ordersv1.UpdateOrderItemsRequest{OrderId: id, Items: items(1), CommandId: ids.New(), ExpectedVersion: i64(1)}
		u1, err := s.oc.UpdateOrderItems(ctx, upd)
		checkResp(t, u1, err, id, 2, 1)
		check(t, id, 3, 1)(s.oc.ConfirmOrder(ctx, &ordersv1.ConfirmOrderRequest{OrderId: id}))
		// Repeated after the order moved on, with a now stale expected version: still the
		// first outcome, nothing appended.
		u2, err := s.oc.UpdateOrderItems(ctx, upd)
		if err != nil || !proto.Equal(u1, u2) {
			t.Fatalf("repeat: %v %v, want %v", u2, err, u1)
		}
		if n := len(loadEvents(t, s.store, id)); n != 3 {
			t.Fatalf("%d events, want 3", n)
		}
		if got := commandCount(t, s, "UpdateOrderItems", app.OutcomeDuplicate); got != 1 {
			t.Fatalf("duplicates counted %v", got)
		}
	})

	t.Run("same command id with other content", func(t *testing.T) {
		id, cmdID := ids.New(), ids.New()
		_, err := s.oc.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: id, CustomerId: s.activeCustomer(t), Items: items(1), CommandId: cmdID})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.oc.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: id, CustomerId: s.activeCustomer(t), Items: items(1), CommandId: cmdID})
		if got := badFields(t, err); !slices.Equal(got, []string{"command_id"}) {
			t.Fatalf("fields %v", got)
		}
		// Another RPC on the same aggregate with the same command id is other content too.
		_, err = s.oc.ConfirmOrder(ctx, &ordersv1.ConfirmOrderRequest{OrderId: id, CommandId: cmdID})
		if got := badFields(t, err); !slices.Equal(got, []string{"command_id"}) {
			t.Fatalf("fields %v", got)
		}
	})

	t.Run("a rejected command repeated is rejected the same way", func(t *testing.T) {
		id := createOrder(t, s, ctx)
		ship := &ordersv1.ShipOrderRequest{OrderId: id, TrackingNumber: "T-1", Carrier: "DHL", CommandId: ids.New()}
		_, err1 := s.oc.ShipOrder(ctx, ship)
		if typ := preconditionType(t, err1); typ != order.RuleShipRequiresConfirmed {
			t.Fatalf("rule %q", typ)
		}
		// Now the order could ship, but the command id already has its outcome.
		check(t, id, 2, 1)(s.oc.ConfirmOrder(ctx, &ordersv1.ConfirmOrderRequest{OrderId: id}))
		_, err2 := s.oc.ShipOrder(ctx, ship)
		if typ := preconditionType(t, err2); typ != order.RuleShipRequiresConfirmed || status.Convert(err2).Message() != status.Convert(err1).Message() {
			t.Fatalf("repeat gave %v, first %v", err2, err1)
		}
		other := proto.Clone(ship).(*ordersv1.ShipOrderRequest)
		other.Carrier = "UPS"
		_, err := s.oc.ShipOrder(ctx, other)
		if got := badFields(t, err); !slices.Equal(got, []string{"command_id"}) {
			t.Fatalf("fields %v", got)
		}
		if n := len(loadEvents(t, s.store, id)); n != 2 {
			t.Fatalf("%d events, want 2", n)
		}
		// A fresh command id ships it.
		ship.CommandId = ids.New()
		check(t, id, 3, 1)(s.oc.ShipOrder(ctx, ship))
	})
}
