package readmodel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
)

// Order is one row of the order tables: the order's state at State.Version() and the customer
// details a list view shows.
type Order struct {
	// State is the order aggregate's state as projected; State.Version() is the sequence of the
	// last event applied.
	State *order.Order
	// CustomerEmail is the customer's email address as of CustomerVersion (empty when unknown).
	CustomerEmail string
	// CustomerName is "first last" as of CustomerVersion (empty when unknown).
	CustomerName string
	// CustomerVersion is the version of the customer the two fields above reflect (0: unknown).
	CustomerVersion int64
}

// Contact is the customer detail the orders projection copies into orders (customer_contacts).
type Contact struct {
	// CustomerID is the customer's UUID.
	CustomerID string
	// Email is the customer's email address.
	Email string
	// Name is "first last".
	Name string
	// Version is the customer version the row reflects.
	Version int64
	// UpdatedAt is when the last event applied happened.
	UpdatedAt time.Time
}

// FullName joins a first and a last name with one space, dropping empty parts.
func FullName(first, last string) string {
	return strings.TrimSpace(strings.TrimSpace(first) + " " + strings.TrimSpace(last))
}

// itemJSON is the stored form of an order line (the items column is a JSON array of them).
type itemJSON struct {
	ProductID      string `json:"product_id"`
	Quantity       int32  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
}

func encodeItems(items []order.Item) (string, error) {
	out := make([]itemJSON, len(items))
	for i, it := range items {
		out[i] = itemJSON{ProductID: it.ProductID, Quantity: it.Quantity, UnitPriceCents: it.UnitPriceCents}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return "", fmt.Errorf("encode items: %w", err)
	}
	return string(b), nil
}

func decodeItems(s string) ([]order.Item, error) {
	if s == "" {
		return nil, nil
	}
	var in []itemJSON
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, fmt.Errorf("decode items: %w", err)
	}
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]order.Item, len(in))
	for i, it := range in {
		out[i] = order.Item{ProductID: it.ProductID, Quantity: it.Quantity, UnitPriceCents: it.UnitPriceCents}
	}
	return out, nil
}

// ms truncates t to the millisecond precision of a CQL timestamp, in UTC.
func ms(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Millisecond)
}

// uuidOf parses a UUID, naming the field in the error.
// uuidOf converts an id held by a stored event or asked for by the query service to gocql's
// type. It refuses only what is not a UUID at all: the query service checked its input with
// ids.Valid already, and events that older writers stored (the nil customer id they accepted)
// must still project, or the projection would stall on them.
func uuidOf(field, s string) (gocql.UUID, error) {
	u, err := gocql.ParseUUID(s)
	if err != nil {
		return u, es.Invalid(field, "must be a UUID")
	}
	return u, nil
}

// OrderTables reads and writes one version of the orders projection's tables.
type OrderTables struct {
	s          *gocql.Session
	version    int
	readModel  string
	byCustomer string
	byStatus   string
	contacts   string
}

// NewOrderTables returns the tables of version v of the orders projection.
func NewOrderTables(s *gocql.Session, v int) OrderTables {
	return OrderTables{
		s:          s,
		version:    v,
		readModel:  TableName(TableOrderReadModel, v),
		byCustomer: TableName(TableOrdersByCustomer, v),
		byStatus:   TableName(TableOrdersByStatus, v),
		contacts:   TableName(TableCustomerContacts, v),
	}
}

// Version returns the table version.
func (t OrderTables) Version() int { return t.version }

// orderSelect lists the columns every order query reads, in the order scanOrder expects.
const orderSelect = `order_id, customer_id, status, items, total_cents, version, tracking_number, carrier, cancel_reason, delivery_signature, customer_email, customer_name, customer_version, created_at, updated_at`

// orderRow receives one scanned order row; pointers detect nulls.
type orderRow struct {
	orderID, customerID                        gocql.UUID
	status, items                              string
	total                                      int64
	version                                    *int64
	tracking, carrier, cancelReason, signature string
	customerEmail, customerName                string
	customerVersion                            int64
	createdAt, updatedAt                       time.Time
}

func (r *orderRow) dest() []any {
	return []any{&r.orderID, &r.customerID, &r.status, &r.items, &r.total, &r.version, &r.tracking, &r.carrier,
		&r.cancelReason, &r.signature, &r.customerEmail, &r.customerName, &r.customerVersion, &r.createdAt, &r.updatedAt}
}

// ghost reports a row with no version: only customer columns written after the row moved away
// (see OrderTables.SetCustomer). Readers skip such rows.
func (r *orderRow) ghost() bool { return r.version == nil }

func (r *orderRow) order() (Order, error) {
	st, err := order.ParseStatus(r.status)
	if err != nil {
		return Order{}, fmt.Errorf("order %s: %w", r.orderID, err)
	}
	items, err := decodeItems(r.items)
	if err != nil {
		return Order{}, fmt.Errorf("order %s: %w", r.orderID, err)
	}
	o := order.New(r.orderID.String())
	o.CustomerID = r.customerID.String()
	o.Status = st
	o.Items = items
	o.TotalCents = r.total
	o.TrackingNumber, o.Carrier = r.tracking, r.carrier
	o.CancelReason, o.DeliverySignature = r.cancelReason, r.signature
	o.CreatedAt, o.UpdatedAt = r.createdAt.UTC(), r.updatedAt.UTC()
	o.SetVersion(*r.version)
	return Order{State: o, CustomerEmail: r.customerEmail, CustomerName: r.customerName, CustomerVersion: r.customerVersion}, nil
}

// Get returns the order's row, or an error matching es.ErrNotFound.
func (t OrderTables) Get(ctx context.Context, orderID string) (Order, error) {
	id, err := uuidOf("order_id", orderID)
	if err != nil {
		return Order{}, err
	}
	var r orderRow
	err = t.s.Query(`SELECT `+orderSelect+` FROM `+t.readModel+` WHERE order_id = ?`, id).WithContext(ctx).Scan(r.dest()...)
	if errors.Is(err, gocql.ErrNotFound) {
		return Order{}, fmt.Errorf("order %s: %w", orderID, es.ErrNotFound)
	}
	if err != nil {
		return Order{}, fmt.Errorf("read order %s: %w", orderID, err)
	}
	if r.ghost() {
		return Order{}, fmt.Errorf("order %s: %w", orderID, es.ErrNotFound)
	}
	return r.order()
}

// Save writes the order's new row to the three order tables in one logged batch (applied
// entirely or not at all). prev is the row read before the change (nil for a new order): when
// the status changed, the order's row under the old status is deleted. The caller is the single
// writer of the order (one partition of the topic, processed in order).
func (t OrderTables) Save(ctx context.Context, prev *Order, next Order) error {
	o := next.State
	if o == nil || o.Version() < 1 || o.Status == order.StatusUnspecified {
		return fmt.Errorf("save order: no state to save")
	}
	id, err := uuidOf("order_id", o.AggregateID())
	if err != nil {
		return err
	}
	cust, err := uuidOf("customer_id", o.CustomerID)
	if err != nil {
		return err
	}
	items, err := encodeItems(o.Items)
	if err != nil {
		return err
	}
	created, updated := ms(o.CreatedAt), ms(o.UpdatedAt)
	status := o.Status.String()
	shard := StatusShard(o.AggregateID())
	b := t.s.NewBatch(gocql.LoggedBatch).WithContext(ctx)
	b.Query(`INSERT INTO `+t.readModel+` (`+orderSelect+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, cust, status, items, o.TotalCents, o.Version(), o.TrackingNumber, o.Carrier, o.CancelReason,
		o.DeliverySignature, next.CustomerEmail, next.CustomerName, next.CustomerVersion, created, updated)
	b.Query(`INSERT INTO `+t.byCustomer+` (`+orderSelect+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, cust, status, items, o.TotalCents, o.Version(), o.TrackingNumber, o.Carrier, o.CancelReason,
		o.DeliverySignature, next.CustomerEmail, next.CustomerName, next.CustomerVersion, created, updated)
	if prev != nil && prev.State != nil && prev.State.Status != o.Status && prev.State.Status != order.StatusUnspecified {
		b.Query(`DELETE FROM `+t.byStatus+` WHERE status = ? AND shard = ? AND created_at = ? AND order_id = ?`,
			prev.State.Status.String(), shard, ms(prev.State.CreatedAt), id)
	}
	b.Query(`INSERT INTO `+t.byStatus+` (shard, `+orderSelect+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		shard, id, cust, status, items, o.TotalCents, o.Version(), o.TrackingNumber, o.Carrier, o.CancelReason,
		o.DeliverySignature, next.CustomerEmail, next.CustomerName, next.CustomerVersion, created, updated)
	if err := b.Exec(); err != nil {
		return fmt.Errorf("save order %s v%d: %w", o.AggregateID(), o.Version(), err)
	}
	return nil
}

// SetCustomer writes the customer details c into the rows of the order o (as last read): its
// order_read_model and orders_by_customer rows and its orders_by_status row under o's status.
//
// It runs beside the order's own writer (customer events are consumed on another partition), so
// the order may have moved to another status meanwhile; the write under the old status then
// leaves a row holding only customer columns (no version), which readers skip. SetCustomer
// removes it: after writing it re-reads the order and, when the status changed, deletes the row
// under the old status (statuses never come back).
func (t OrderTables) SetCustomer(ctx context.Context, o Order, c Contact) error {
	st := o.State
	id, err := uuidOf("order_id", st.AggregateID())
	if err != nil {
		return err
	}
	cust, err := uuidOf("customer_id", st.CustomerID)
	if err != nil {
		return err
	}
	created := ms(st.CreatedAt)
	shard := StatusShard(st.AggregateID())
	b := t.s.NewBatch(gocql.LoggedBatch).WithContext(ctx)
	b.Query(`UPDATE `+t.readModel+` SET customer_email = ?, customer_name = ?, customer_version = ? WHERE order_id = ?`,
		c.Email, c.Name, c.Version, id)
	b.Query(`UPDATE `+t.byCustomer+` SET customer_email = ?, customer_name = ?, customer_version = ? WHERE customer_id = ? AND created_at = ? AND order_id = ?`,
		c.Email, c.Name, c.Version, cust, created, id)
	b.Query(`UPDATE `+t.byStatus+` SET customer_email = ?, customer_name = ?, customer_version = ? WHERE status = ? AND shard = ? AND created_at = ? AND order_id = ?`,
		c.Email, c.Name, c.Version, st.Status.String(), shard, created, id)
	if err := b.Exec(); err != nil {
		return fmt.Errorf("set customer details of order %s: %w", st.AggregateID(), err)
	}
	now, err := t.Get(ctx, st.AggregateID())
	if err != nil {
		return fmt.Errorf("set customer details of order %s: re-read: %w", st.AggregateID(), err)
	}
	if now.State.Status != st.Status {
		if err := t.s.Query(`DELETE FROM `+t.byStatus+` WHERE status = ? AND shard = ? AND created_at = ? AND order_id = ?`,
			st.Status.String(), shard, created, id).WithContext(ctx).Exec(); err != nil {
			return fmt.Errorf("set customer details of order %s: remove stale status row: %w", st.AggregateID(), err)
		}
	}
	return nil
}

// Contact returns the customer details the orders projection holds for a customer, or an error
// matching es.ErrNotFound.
func (t OrderTables) Contact(ctx context.Context, customerID string) (Contact, error) {
	id, err := uuidOf("customer_id", customerID)
	if err != nil {
		return Contact{}, err
	}
	c := Contact{CustomerID: id.String()}
	err = t.s.Query(`SELECT email, name, version, updated_at FROM `+t.contacts+` WHERE customer_id = ?`, id).
		WithContext(ctx).Scan(&c.Email, &c.Name, &c.Version, &c.UpdatedAt)
	if errors.Is(err, gocql.ErrNotFound) {
		return Contact{}, fmt.Errorf("contact %s: %w", customerID, es.ErrNotFound)
	}
	if err != nil {
		return Contact{}, fmt.Errorf("read contact %s: %w", customerID, err)
	}
	c.UpdatedAt = c.UpdatedAt.UTC()
	return c, nil
}

// SaveContact writes a customer's details.
func (t OrderTables) SaveContact(ctx context.Context, c Contact) error {
	id, err := uuidOf("customer_id", c.CustomerID)
	if err != nil {
		return err
	}
	if err := t.s.Query(`INSERT INTO `+t.contacts+` (customer_id, email, name, version, updated_at) VALUES (?, ?, ?, ?, ?)`,
		id, c.Email, c.Name, c.Version, ms(c.UpdatedAt)).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("save contact %s v%d: %w", c.CustomerID, c.Version, err)
	}
	return nil
}
