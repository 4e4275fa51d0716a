package app

import (
	"context"
	"errors"
	"testing"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/es/esmem"
)

// TestIDOfAnotherKind: an id that already names an aggregate of the other kind is bad input
// with the field and the reason, not an internal error (found driving `make run` by hand: a
// RegisterCustomer with an order's id answered INTERNAL), and an order for a "customer" that is
// in fact an order is refused as for a customer that does not exist.
func TestIDOfAnotherKind(t *testing.T) {
	ctx := context.Background()
	r := newMemReplica(esmem.New(codec.NewRegistry()))
	customers := NewCustomerHandler(r.svc, nil)
	orderID := memOrder(t, r)

	_, err := customers.Execute(ctx, Request[customer.Command]{AggregateID: orderID, Name: "RegisterCustomer",
		Command: customer.Register{CustomerID: orderID, Email: "c@example.com", FirstName: "C", LastName: "D"}})
	var ve *es.ValidationError
	if !errors.As(err, &ve) || len(ve.Violations) != 1 || ve.Violations[0].Field != "customer_id" {
		t.Fatalf("register a customer under an order's id: %v, want an invalid customer_id", err)
	}
	t.Log(err)

	customerID := register(ctx, t, customers)
	_, err = r.exec(customerID, "", order.UpdateItems{Items: memItems(2)})
	if !errors.As(err, &ve) || len(ve.Violations) != 1 || ve.Violations[0].Field != "order_id" {
		t.Fatalf("update items of a customer's id: %v, want an invalid order_id", err)
	}

	id := ids.New()
	_, err = r.exec(id, "", order.Create{OrderID: id, CustomerID: orderID, Items: memItems(1)})
	var re *es.RuleError
	if !errors.As(err, &re) {
		t.Fatalf("order for a customer id that is an order's: %v, want the rule of a missing customer", err)
	}
	t.Log(err)
}
