package command_test

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// Two replicas on one store, each with its own cache. A replica decides a command on its
// cached order without reading the store first; these tests check that what the read used to
// decide still holds: a command id another replica recorded keeps its first outcome, and so
// does a command id another replica rejected, though the order has changed since.

// TestRepeatOnAStaleReplicaReturnsTheFirstOutcome: replica a cached the order at version 1;
// replica b runs command x (version 2); x repeated on a returns b's outcome and appends nothing.
func TestRepeatOnAStaleReplicaReturnsTheFirstOutcome(t *testing.T) {
	e := env(t)
	a := startServer(t, serverOptions{MaxRetries: 3})
	b := startServer(t, serverOptions{MaxRetries: 3})
	ctx := ctxT(t)
	id := createOrder(t, a, ctx) // cached by a at version 1
	update := &ordersv1.UpdateOrderItemsRequest{OrderId: id, Items: items(3), Reason: "more", CommandId: ids.New()}
	first, err := b.oc.UpdateOrderItems(ctx, update)
	if err != nil {
		t.Fatal(err)
	}
	again, err := a.oc.UpdateOrderItems(ctx, update)
	if err != nil {
		t.Fatal(err)
	}
	if again.GetVersion() != 2 || len(again.GetEventIds()) != 1 || again.GetEventIds()[0] != first.GetEventIds()[0] {
		t.Fatalf("repeat on the stale replica: %+v, first outcome %+v", again, first)
	}
	head, err := e.store.Head(ctx, id)
	if err != nil || head.Version != 2 {
		t.Fatalf("order at version %d (%v), want 2: the repeat appended", head.Version, err)
	}
}

// TestRejectionStandsOnAReplicaThatCachedTheOrder: replica b rejects command x (ship an order
// not confirmed); replica a, which cached the order and then confirmed it itself (its cache is
// current, and knows nothing of x), gets x repeated: the order now allows shipping, but x's
// first outcome was the rejection, and that is what a answers, appending nothing.
func TestRejectionStandsOnAReplicaThatCachedTheOrder(t *testing.T) {
	e := env(t)
	a := startServer(t, serverOptions{MaxRetries: 3})
	b := startServer(t, serverOptions{MaxRetries: 3})
	ctx := ctxT(t)
	id := createOrder(t, a, ctx)
	ship := &ordersv1.ShipOrderRequest{OrderId: id, TrackingNumber: "T-1", Carrier: "C", CommandId: ids.New()}
	_, err := b.oc.ShipOrder(ctx, ship)
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("ship before confirm on b: %v, want FailedPrecondition", err)
	}
	if _, err := a.oc.ConfirmOrder(ctx, &ordersv1.ConfirmOrderRequest{OrderId: id}); err != nil {
		t.Fatal(err)
	}
	_, again := a.oc.ShipOrder(ctx, ship)
	if status.Code(again) != codes.FailedPrecondition || status.Convert(again).Message() != status.Convert(err).Message() {
		t.Fatalf("repeat of the rejected command on a: %v, want the first rejection %v", again, err)
	}
	head, herr := e.store.Head(ctx, id)
	if herr != nil || head.Version != 2 {
		t.Fatalf("order at version %d (%v), want 2: the repeat of a rejected command appended", head.Version, herr)
	}
	// A new command id ships it.
	if _, err := a.oc.ShipOrder(ctx, &ordersv1.ShipOrderRequest{OrderId: id, TrackingNumber: "T-1", Carrier: "C", CommandId: ids.New()}); err != nil {
		t.Fatal(err)
	}
}
