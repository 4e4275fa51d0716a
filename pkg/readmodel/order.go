package readmodel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql"
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
		return Order{}, fmt.Errorf("order %s: %w: %w", r.orderID, ErrUnreadableRow, err)
	}
	items, err := decodeItems(r.items)
	if err != nil {
		return Order{}, fmt.Errorf("order %s: %w: %w", r.orderID, ErrUnreadableRow, err)
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
		return Order{}, fmt.Errorf("read order %s: %w", orderID, cql.UnavailableIn(ctx, err))
	}
	if r.ghost() {
		return Order{}, fmt.Errorf("order %s: %w", orderID, es.ErrNotFound)
	}
	return r.order()
}

// orderColumns are the columns of an order row that come from the order itself (every column
// but the customer details), in the order Save binds them.
const orderColumns = `order_id, customer_id, status, items, total_cents, version, tracking_number, carrier, cancel_reason, delivery_signature, created_at, updated_at`

// Save writes the order's new row to the three order tables in one logged batch (applied
// entirely or not at all). prev is the row read before the change (nil for a new order) and
// passed lists the statuses the order held between prev and next (after each event applied
// before the last one, when a gap was healed): the order's rows under prev's status and under
// every passed status other than next's are deleted.
//
// Every write carries a timestamp derived from next's version (the customer details one
// derived from next.CustomerVersion, see writetime.go), so a write that lands after a newer
// one changes nothing: a projector that lost its partition cannot move a row back, nor leave a
// row under a status the order has left.
func (t OrderTables) Save(ctx context.Context, prev *Order, next Order, passed ...order.Status) error {
	o := next.State
	if o == nil || o.Version() < 1 || o.Status == order.StatusUnspecified {
		return fmt.Errorf("save order: %w", ErrNoState)
	}
	ts, err := versionTimestamp(o.Version())
	if err != nil {
		return fmt.Errorf("save order %s: %w", o.AggregateID(), err)
	}
	dts, err := detailTimestamp(next.CustomerVersion)
	if err != nil {
		return fmt.Errorf("save order %s: %w", o.AggregateID(), err)
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
	values := []any{id, cust, status, items, o.TotalCents, o.Version(), o.TrackingNumber, o.Carrier, o.CancelReason,
		o.DeliverySignature, created, updated, ts}
	details := []any{dts, next.CustomerEmail, next.CustomerName, next.CustomerVersion}
	// The customer details are written only where they are not already: every row when they
	// differ from prev's (or there is no prev), else only the row under a new status. (The
	// three tables' details are always written together, so prev's stand for all of them.)
	newDetails := prev == nil || prev.CustomerEmail != next.CustomerEmail || prev.CustomerName != next.CustomerName ||
		prev.CustomerVersion != next.CustomerVersion
	newStatusRow := prev == nil || prev.State == nil || prev.State.Status != o.Status
	b := t.s.NewBatch(gocql.LoggedBatch).WithContext(ctx)
	b.Query(`INSERT INTO `+t.readModel+` (`+orderColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`, values...)
	b.Query(`INSERT INTO `+t.byCustomer+` (`+orderColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`, values...)
	if newDetails {
		b.Query(`UPDATE `+t.readModel+` USING TIMESTAMP ? SET customer_email = ?, customer_name = ?, customer_version = ? WHERE order_id = ?`,
			append(details, id)...)
		b.Query(`UPDATE `+t.byCustomer+` USING TIMESTAMP ? SET customer_email = ?, customer_name = ?, customer_version = ? WHERE customer_id = ? AND created_at = ? AND order_id = ?`,
			append(details, cust, created, id)...)
	}
	for _, st := range leftStatuses(prev, o.Status, passed) {
		b.Query(`DELETE FROM `+t.byStatus+` USING TIMESTAMP ? WHERE status = ? AND shard = ? AND created_at = ? AND order_id = ?`,
			ts, st.String(), shard, created, id)
	}
	b.Query(`INSERT INTO `+t.byStatus+` (shard, `+orderColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`,
		append([]any{shard}, values...)...)
	if newDetails || newStatusRow {
		b.Query(`UPDATE `+t.byStatus+` USING TIMESTAMP ? SET customer_email = ?, customer_name = ?, customer_version = ? WHERE status = ? AND shard = ? AND created_at = ? AND order_id = ?`,
			append(details, status, shard, created, id)...)
	}
	if err := b.Exec(); err != nil {
		return fmt.Errorf("save order %s v%d: %w", o.AggregateID(), o.Version(), err)
	}
	return nil
}

// ErrNoState is returned by Save for an order or customer without a state to write (no
// version or no status): a caller's bug or an event history that does not create the
// aggregate, never fixed by retrying.
var ErrNoState = errors.New("no state to save")

// ErrUnreadableRow is returned (wrapped) when a stored row cannot be decoded (an unknown status,
// malformed JSON): reading it again gives the same answer.
var ErrUnreadableRow = errors.New("read-model row cannot be decoded")

// leftStatuses returns the statuses, other than now, that the order held in prev or passed
// through: its rows under them are deleted.
func leftStatuses(prev *Order, now order.Status, passed []order.Status) []order.Status {
	var left []order.Status
	add := func(st order.Status) {
		if st == now || st == order.StatusUnspecified || slices.Contains(left, st) {
			return
		}
		left = append(left, st)
	}
	if prev != nil && prev.State != nil {
		add(prev.State.Status)
	}
	for _, st := range passed {
		add(st)
	}
	return left
}

// SetCustomer writes the customer details c into the rows of the order o (as last read): its
// order_read_model and orders_by_customer rows and its orders_by_status row under o's status.
//
// It runs beside the order's own writer (customer events are consumed on another partition), so
// the order may have moved to another status meanwhile. The details are written with a
// timestamp derived from c.Version, below every order write's (writetime.go): details of an
// older customer version never replace newer ones, and details written under a status the order
// has left are covered by the deletion of that row, so they never show as a row.
func (t OrderTables) SetCustomer(ctx context.Context, o Order, c Contact) error {
	st := o.State
	dts, err := detailTimestamp(c.Version)
	if err != nil {
		return fmt.Errorf("set customer details of order %s: %w", st.AggregateID(), err)
	}
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
	b.Query(`UPDATE `+t.readModel+` USING TIMESTAMP ? SET customer_email = ?, customer_name = ?, customer_version = ? WHERE order_id = ?`,
		dts, c.Email, c.Name, c.Version, id)
	b.Query(`UPDATE `+t.byCustomer+` USING TIMESTAMP ? SET customer_email = ?, customer_name = ?, customer_version = ? WHERE customer_id = ? AND created_at = ? AND order_id = ?`,
		dts, c.Email, c.Name, c.Version, cust, created, id)
	b.Query(`UPDATE `+t.byStatus+` USING TIMESTAMP ? SET customer_email = ?, customer_name = ?, customer_version = ? WHERE status = ? AND shard = ? AND created_at = ? AND order_id = ?`,
		dts, c.Email, c.Name, c.Version, st.Status.String(), shard, created, id)
	if err := b.Exec(); err != nil {
		return fmt.Errorf("set customer details of order %s: %w", st.AggregateID(), err)
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
	ts, err := versionTimestamp(c.Version)
	if err != nil {
		return fmt.Errorf("save contact %s: %w", c.CustomerID, err)
	}
	if err := t.s.Query(`INSERT INTO `+t.contacts+` (customer_id, email, name, version, updated_at) VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?`,
		id, c.Email, c.Name, c.Version, ms(c.UpdatedAt), ts).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("save contact %s v%d: %w", c.CustomerID, c.Version, err)
	}
	return nil
}
