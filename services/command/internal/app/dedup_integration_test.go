package app

import (
	"context"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
)

// TestRememberedCommandsAreBounded: a client sending distinct command ids to one order cannot
// grow the record every command on it reads past MaxRememberedCommands; the newest ids are
// still recognised as repeats, the oldest are forgotten.
func TestRememberedCommandsAreBounded(t *testing.T) {
	session, _ := cqltest.Keyspace(t)
	store := cql.NewEventStore(session, codec.NewRegistry(), cql.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const bound = 3
	svc := NewService(store, Options{MaxRememberedCommands: bound})
	h := NewOrderHandler(svc, codec.OrderSnapshotCodec{}, NewCustomerHandler(svc, nil))
	customerID := register(ctx, t, NewCustomerHandler(svc, nil))
	id := ids.New()
	exec := func(commandID string, cmd order.Command) (Result, error) {
		return h.Execute(ctx, Request[order.Command]{AggregateID: id, Command: cmd, Name: "test",
			CommandID: commandID, Fingerprint: "fp-" + commandID})
	}
	var sent []string
	for i := range 8 {
		cid := ids.New()
		var cmd order.Command = order.UpdateItems{Items: []order.Item{{ProductID: ids.New(), Quantity: int32(i + 1), UnitPriceCents: 10}}}
		if i == 0 {
			cmd = order.Create{OrderID: id, CustomerID: customerID, Items: []order.Item{{ProductID: ids.New(), Quantity: 1, UnitPriceCents: 10}}}
		}
		if _, err := exec(cid, cmd); err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
		sent = append(sent, cid)
	}
	head, err := store.Head(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(head.Commands) != bound {
		t.Fatalf("%d command ids remembered, want %d: %v", len(head.Commands), bound, head.Commands)
	}
	for _, cid := range sent[len(sent)-bound:] {
		if _, ok := head.Commands[cid]; !ok {
			t.Errorf("recent command %s forgotten", cid)
		}
	}
	// The newest is still a repeat: the first outcome, nothing appended.
	last := sent[len(sent)-1]
	res, err := exec(last, order.UpdateItems{Items: []order.Item{{ProductID: ids.New(), Quantity: 8, UnitPriceCents: 10}}})
	if err != nil || !res.Duplicate || res.Version != 8 {
		t.Fatalf("repeat of the newest command: %+v %v", res, err)
	}
}
