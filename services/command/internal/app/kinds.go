package app

import (
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
)

// OrderHandler executes order commands.
type OrderHandler = Handler[*order.Order, order.Command]

// CustomerHandler executes customer commands.
type CustomerHandler = Handler[*customer.Customer, customer.Command]

// NewOrderHandler returns the handler of order commands; snapshots encodes Order snapshots
// (nil disables them).
func NewOrderHandler(svc *Service, snapshots es.SnapshotCodec) *OrderHandler {
	return NewHandler(svc, Kind[*order.Order, order.Command]{
		AggregateType: order.AggregateType, New: order.New, Snapshots: snapshots,
	})
}

// NewCustomerHandler returns the handler of customer commands; snapshots encodes Customer
// snapshots (nil disables them).
func NewCustomerHandler(svc *Service, snapshots es.SnapshotCodec) *CustomerHandler {
	return NewHandler(svc, Kind[*customer.Customer, customer.Command]{
		AggregateType: customer.AggregateType, New: customer.New, Snapshots: snapshots,
	})
}
