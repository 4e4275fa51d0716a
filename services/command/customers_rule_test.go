package command_test

import (
	"context"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// TestCreateOrderCustomerRules: the customer check through the real server. A refusal because
// of the customer is not remembered under the command id (registering the customer lifts it, and
// the retry is decided again); an order given the id of its own customer does not wait on
// itself (the command locks are per kind and id).
func TestCreateOrderCustomerRules(t *testing.T) {
	s := defaultServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	customerID, orderID, cmdID := ids.New(), ids.New(), ids.New()
	req := &ordersv1.CreateOrderRequest{OrderId: orderID, CustomerId: customerID, Items: items(1), CommandId: cmdID}
	_, err := s.oc.CreateOrder(ctx, req)
	if got := preconditionType(t, err); got != order.RuleCreateCustomerExists {
		t.Fatalf("rule %s, want %s", got, order.RuleCreateCustomerExists)
	}
	if _, err := s.cc.RegisterCustomer(ctx, &ordersv1.RegisterCustomerRequest{CustomerId: customerID,
		Email: "late@example.com", FirstName: "Late", LastName: "Comer"}); err != nil {
		t.Fatal(err)
	}
	resp, err := s.oc.CreateOrder(ctx, req)
	checkResp(t, resp, err, orderID, 1, 1)

	same := ids.New()
	_, err = s.oc.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: same, CustomerId: same, Items: items(1)})
	if got := preconditionType(t, err); got != order.RuleCreateCustomerExists {
		t.Fatalf("order with its own id as customer: rule %s (%v), want %s", got, err, order.RuleCreateCustomerExists)
	}
}
