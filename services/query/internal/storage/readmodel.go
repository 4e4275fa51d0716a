// Package storage adapts pkg/readmodel and pkg/cql to the query service's use-case layer: it
// classifies driver failures as es.ErrUnavailable (the gRPC edge then answers UNAVAILABLE
// instead of INTERNAL) and probes the database for the health status.
package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

// ReadModel implements the use-case layer's app.ReadModel port on a *readmodel.Store.
type ReadModel struct {
	st *readmodel.Store
}

// NewReadModel returns the adapter of st.
func NewReadModel(st *readmodel.Store) *ReadModel { return &ReadModel{st: st} }

// GetOrder returns the order's row.
func (r *ReadModel) GetOrder(ctx context.Context, orderID string) (readmodel.Order, error) {
	o, err := r.st.GetOrder(ctx, orderID)
	return o, Classify(err)
}

// ListOrdersByCustomer returns a page of the customer's orders, newest first.
func (r *ReadModel) ListOrdersByCustomer(ctx context.Context, customerID string, pageSize int, pageToken string) (readmodel.Page, error) {
	p, err := r.st.ListOrdersByCustomer(ctx, customerID, pageSize, pageToken)
	return p, Classify(err)
}

// ListOrdersByStatus returns a page of the orders in the status, newest first.
func (r *ReadModel) ListOrdersByStatus(ctx context.Context, status order.Status, pageSize int, pageToken string) (readmodel.Page, error) {
	p, err := r.st.ListOrdersByStatus(ctx, status, pageSize, pageToken)
	return p, Classify(err)
}

// GetCustomer returns the customer's state as projected.
func (r *ReadModel) GetCustomer(ctx context.Context, customerID string) (*customer.Customer, error) {
	c, err := r.st.GetCustomer(ctx, customerID)
	return c, Classify(err)
}

// Classify wraps err with es.ErrUnavailable when it says the database could not serve the
// request (no connection, timeout, node unavailable or overloaded). The ordersys sentinels and
// context errors are returned as they are, and so is anything else (a corrupt row, a bug),
// which the edge reports as INTERNAL.
func Classify(err error) error {
	if err == nil || !cql.Unreachable(err) {
		return err
	}
	return fmt.Errorf("%w: %w", es.ErrUnavailable, err)
}

// Probe returns a health probe of the query service's dependencies: it reads the event store's
// head of the nil UUID and the customers read model through the active projection version
// (both must answer; a missing row is an answer).
func Probe(store es.EventStore, rm *readmodel.Store) func(context.Context) error {
	return func(ctx context.Context) error {
		if _, err := store.Head(ctx, ids.Probe); err != nil {
			return fmt.Errorf("event store: %w", err)
		}
		if _, err := rm.GetCustomer(ctx, ids.Probe); err != nil && !errors.Is(err, es.ErrNotFound) {
			return fmt.Errorf("read model: %w", err)
		}
		return nil
	}
}
