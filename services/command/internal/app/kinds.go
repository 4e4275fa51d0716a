package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
)

// OrderHandler executes order commands.
type OrderHandler = Handler[*order.Order, order.Command]

// CustomerHandler executes customer commands.
type CustomerHandler = Handler[*customer.Customer, customer.Command]

// NewOrderHandler returns the handler of order commands; snapshots encodes Order snapshots
// (nil disables them). customers is where a CreateOrder looks up its customer's standing, from
// the event store (snapshot + tail, through the service's cache, caught up on every read).
func NewOrderHandler(svc *Service, snapshots es.SnapshotCodec, customers *CustomerHandler) *OrderHandler {
	return NewHandler(svc, Kind[*order.Order, order.Command]{
		AggregateType: order.AggregateType, New: order.New, Snapshots: snapshots,
		Prepare: func(ctx context.Context, cmd order.Command) (order.Command, error) {
			create, ok := cmd.(order.Create)
			if !ok {
				return cmd, nil
			}
			standing, err := CustomerStanding(ctx, customers, create.CustomerID)
			if err != nil {
				return nil, err
			}
			create.Customer = standing
			return create, nil
		},
		Creates: func(cmd order.Command) bool { _, ok := cmd.(order.Create); return ok },
	})
}

// NewCustomerHandler returns the handler of customer commands; snapshots encodes Customer
// snapshots (nil disables them).
func NewCustomerHandler(svc *Service, snapshots es.SnapshotCodec) *CustomerHandler {
	return NewHandler(svc, Kind[*customer.Customer, customer.Command]{
		AggregateType: customer.AggregateType, New: customer.New, Snapshots: snapshots,
		// No Creates: a registration's events are sealed with the customer's data key before
		// the batch runs, so one decided without a read would make a key for an id that holds
		// another aggregate, and meet an erased customer's refusal before its stream.
	})
}

// CustomerStanding reads the customer's current state from the event store and says whether
// it exists and may order. An id that is not valid is reported as CustomerMissing (the order's
// own validation names the field first).
func CustomerStanding(ctx context.Context, customers *CustomerHandler, customerID string) (order.CustomerStanding, error) {
	standing := order.CustomerMissing
	if customerID = ids.Canonical(customerID); !ids.Valid(customerID) {
		return standing, nil
	}
	err := customers.Read(ctx, customerID, func(c *customer.Customer) {
		switch c.Status {
		case customer.StatusActive:
			standing = order.CustomerActive
		case customer.StatusSuspended:
			standing = order.CustomerSuspended
		case customer.StatusDeactivated, customer.StatusErased: // an erased account is closed too
			standing = order.CustomerDeactivated
		}
	})
	var ve *es.ValidationError
	if errors.As(err, &ve) { // the id names an aggregate of another kind: no such customer
		return order.CustomerMissing, nil
	}
	if err != nil {
		return order.CustomerUnchecked, fmt.Errorf("look up customer %s: %w", customerID, err)
	}
	return standing, nil
}
