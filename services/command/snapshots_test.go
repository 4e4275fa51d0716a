package command_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

func TestSnapshots(t *testing.T) {
	s := defaultServer(t) // snapshot every 10 events
	ctx := ctxT(t)
	id := createOrder(t, s, ctx)
	for v := int64(2); v <= 25; v++ {
		check(t, id, v, 1)(s.oc.UpdateOrderItems(ctx, &ordersv1.UpdateOrderItemsRequest{OrderId: id, Items: items(int(v%4) + 1), Reason: fmt.Sprint(v)}))
	}
	if err := s.svc.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	snap, err := s.store.LatestSnapshot(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version != 20 || snap.AggregateType != order.AggregateType {
		t.Fatalf("latest snapshot at %d (%s), want 20", snap.Version, snap.AggregateType)
	}
	if _, err := s.store.LatestSnapshot(ctx, id, 19); err != nil {
		t.Fatalf("snapshot at 10: %v", err)
	}

	loaded, err := s.orders.Load(ctx, id) // snapshot at 20 + events 21..25
	if err != nil {
		t.Fatal(err)
	}
	replayed := order.New(id)
	if err := es.Replay(replayed, loadEvents(t, s.store, id)); err != nil {
		t.Fatal(err)
	}
	if replayed.Version() != 25 || !reflect.DeepEqual(loaded, replayed) {
		t.Fatalf("snapshot+tail %+v\nfull replay   %+v", loaded, replayed)
	}
	fromSnap, err := codec.OrderSnapshotCodec{}.Restore(snap)
	if err != nil || fromSnap.Version() != 20 {
		t.Fatalf("restore: %v %v", fromSnap, err)
	}
}
