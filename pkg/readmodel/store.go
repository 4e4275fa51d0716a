package readmodel

import (
	"context"
	"fmt"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/order"
)

// DefaultVersionTTL is how long a Store trusts the active versions it read.
const DefaultVersionTTL = 2 * time.Second

// Options tune a Store.
type Options struct {
	// VersionTTL is how long the active version of a projection is cached (default
	// DefaultVersionTTL). After a rebuild switches versions, a reader moves within this time.
	VersionTTL time.Duration
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// Store serves the reads of the query service from the active version of each projection. A
// read the database could not serve fails with es.ErrUnavailable (cql.UnavailableIn).
type Store struct {
	s        *gocql.Session
	versions *versionCache
}

// NewStore returns a Store on the session's keyspace.
func NewStore(s *gocql.Session, opts Options) *Store {
	if opts.VersionTTL <= 0 {
		opts.VersionTTL = DefaultVersionTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{s: s, versions: newVersionCache(s, opts.VersionTTL, opts.Now)}
}

// Orders returns the tables of the active version of the orders projection.
func (st *Store) Orders(ctx context.Context) (OrderTables, error) {
	v, err := st.versions.active(ctx, ProjectionOrders)
	if err != nil {
		return OrderTables{}, fmt.Errorf("resolve orders read model: %w", err)
	}
	return NewOrderTables(st.s, v), nil
}

// Customers returns the table of the active version of the customers projection.
func (st *Store) Customers(ctx context.Context) (CustomerTables, error) {
	v, err := st.versions.active(ctx, ProjectionCustomers)
	if err != nil {
		return CustomerTables{}, fmt.Errorf("resolve customers read model: %w", err)
	}
	return NewCustomerTables(st.s, v), nil
}

// GetOrder returns the order's row, or an error matching es.ErrNotFound (es.ErrInvalidArgument
// for an id that is not a UUID).
func (st *Store) GetOrder(ctx context.Context, orderID string) (Order, error) {
	t, err := st.Orders(ctx)
	if err != nil {
		return Order{}, err
	}
	return t.Get(ctx, orderID)
}

// ListOrdersByCustomer returns a page of the customer's orders, newest first.
func (st *Store) ListOrdersByCustomer(ctx context.Context, customerID string, pageSize int, pageToken string) (Page, error) {
	t, err := st.Orders(ctx)
	if err != nil {
		return Page{}, err
	}
	return t.ListByCustomer(ctx, customerID, pageSize, pageToken)
}

// ListOrdersByStatus returns a page of the orders with the status, newest first.
func (st *Store) ListOrdersByStatus(ctx context.Context, status order.Status, pageSize int, pageToken string) (Page, error) {
	t, err := st.Orders(ctx)
	if err != nil {
		return Page{}, err
	}
	return t.ListByStatus(ctx, status, pageSize, pageToken)
}

// GetCustomer returns the customer's state as projected, or an error matching es.ErrNotFound.
func (st *Store) GetCustomer(ctx context.Context, customerID string) (*customer.Customer, error) {
	t, err := st.Customers(ctx)
	if err != nil {
		return nil, err
	}
	return t.Get(ctx, customerID)
}
