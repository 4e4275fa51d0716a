package readmodel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
)

// addressJSON is the stored form of an address (the addresses column is a JSON array of them).
type addressJSON struct {
	AddressID   string `json:"address_id"`
	Label       string `json:"label,omitempty"`
	Line1       string `json:"line1,omitempty"`
	Line2       string `json:"line2,omitempty"`
	City        string `json:"city,omitempty"`
	Region      string `json:"region,omitempty"`
	PostalCode  string `json:"postal_code,omitempty"`
	CountryCode string `json:"country_code,omitempty"`
	IsDefault   bool   `json:"is_default,omitempty"`
}

// paymentMethodJSON is the stored form of a payment method (payment_methods column).
type paymentMethodJSON struct {
	PaymentMethodID string `json:"payment_method_id"`
	Kind            string `json:"kind"`
	Brand           string `json:"brand,omitempty"`
	Last4           string `json:"last4,omitempty"`
	ExpMonth        int32  `json:"exp_month,omitempty"`
	ExpYear         int32  `json:"exp_year,omitempty"`
	IsDefault       bool   `json:"is_default,omitempty"`
}

func encodeJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func encodeAddresses(as []customer.Address) (string, error) {
	out := make([]addressJSON, len(as))
	for i, a := range as {
		out[i] = addressJSON(a)
	}
	return encodeJSON(out)
}

func decodeAddresses(s string) ([]customer.Address, error) {
	var in []addressJSON
	if s != "" {
		if err := json.Unmarshal([]byte(s), &in); err != nil {
			return nil, fmt.Errorf("decode addresses: %w", err)
		}
	}
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]customer.Address, len(in))
	for i, a := range in {
		out[i] = customer.Address(a)
	}
	return out, nil
}

func encodePaymentMethods(ps []customer.PaymentMethod) (string, error) {
	out := make([]paymentMethodJSON, len(ps))
	for i, p := range ps {
		out[i] = paymentMethodJSON{PaymentMethodID: p.PaymentMethodID, Kind: p.Kind.String(), Brand: p.Brand,
			Last4: p.Last4, ExpMonth: p.ExpMonth, ExpYear: p.ExpYear, IsDefault: p.IsDefault}
	}
	return encodeJSON(out)
}

func decodePaymentMethods(s string) ([]customer.PaymentMethod, error) {
	var in []paymentMethodJSON
	if s != "" {
		if err := json.Unmarshal([]byte(s), &in); err != nil {
			return nil, fmt.Errorf("decode payment methods: %w", err)
		}
	}
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]customer.PaymentMethod, len(in))
	for i, p := range in {
		out[i] = customer.PaymentMethod{PaymentMethodID: p.PaymentMethodID, Kind: parseKind(p.Kind), Brand: p.Brand,
			Last4: p.Last4, ExpMonth: p.ExpMonth, ExpYear: p.ExpYear, IsDefault: p.IsDefault}
	}
	return out, nil
}

func parseKind(s string) customer.PaymentMethodKind {
	for k := customer.KindCard; k <= customer.KindWallet; k++ {
		if k.String() == s {
			return k
		}
	}
	return customer.KindUnspecified
}

func parseCustomerStatus(s string) (customer.Status, error) {
	for st := customer.StatusActive; st <= customer.StatusErased; st++ {
		if st.String() == s {
			return st, nil
		}
	}
	return customer.StatusUnspecified, fmt.Errorf("unknown customer status %q", s)
}

func errStatus(s order.Status) error {
	return es.Invalid("status", fmt.Sprintf("must be one of CREATED, CONFIRMED, SHIPPED, DELIVERED, CANCELLED, got %s", s))
}

// CustomerTables reads and writes one version of the customers projection's table.
type CustomerTables struct {
	s         *gocql.Session
	version   int
	readModel string
}

// NewCustomerTables returns the table of version v of the customers projection.
func NewCustomerTables(s *gocql.Session, v int) CustomerTables {
	return CustomerTables{s: s, version: v, readModel: TableName(TableCustomerReadModel, v)}
}

// Version returns the table version.
func (t CustomerTables) Version() int { return t.version }

// Get returns the customer's state as projected (Version() is the last sequence applied), or an
// error matching es.ErrNotFound.
func (t CustomerTables) Get(ctx context.Context, customerID string) (*customer.Customer, error) {
	id, err := uuidOf("customer_id", customerID)
	if err != nil {
		return nil, err
	}
	var email, first, last, phone, addresses, payments, tier, status string
	var version *int64
	var created, updated time.Time
	err = t.s.Query(`SELECT email, first_name, last_name, phone, addresses, payment_methods, tier, status, version, created_at, updated_at FROM `+
		t.readModel+` WHERE customer_id = ?`, id).WithContext(ctx).
		Scan(&email, &first, &last, &phone, &addresses, &payments, &tier, &status, &version, &created, &updated)
	if errors.Is(err, gocql.ErrNotFound) || (err == nil && version == nil) {
		return nil, fmt.Errorf("customer %s: %w", customerID, es.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read customer %s: %w", customerID, cql.UnavailableIn(ctx, err))
	}
	c := customer.New(id.String())
	c.Email, c.FirstName, c.LastName, c.Phone = customer.Email(email), first, last, customer.PhoneNumber(phone)
	if c.Addresses, err = decodeAddresses(addresses); err != nil {
		return nil, fmt.Errorf("customer %s: %w: %w", customerID, ErrUnreadableRow, err)
	}
	if c.PaymentMethods, err = decodePaymentMethods(payments); err != nil {
		return nil, fmt.Errorf("customer %s: %w: %w", customerID, ErrUnreadableRow, err)
	}
	if c.Tier, err = customer.ParseTier(tier); err != nil {
		return nil, fmt.Errorf("customer %s: %w: %w", customerID, ErrUnreadableRow, err)
	}
	if c.Status, err = parseCustomerStatus(status); err != nil {
		return nil, fmt.Errorf("customer %s: %w: %w", customerID, ErrUnreadableRow, err)
	}
	c.CreatedAt, c.UpdatedAt = created.UTC(), updated.UTC()
	c.SetVersion(*version)
	return c, nil
}

// Save writes the customer's row.
func (t CustomerTables) Save(ctx context.Context, c *customer.Customer) error {
	if c == nil || c.Version() < 1 || c.Status == customer.StatusUnspecified {
		return fmt.Errorf("save customer: %w", ErrNoState)
	}
	ts, err := versionTimestamp(c.Version())
	if err != nil {
		return fmt.Errorf("save customer %s: %w", c.AggregateID(), err)
	}
	id, err := uuidOf("customer_id", c.AggregateID())
	if err != nil {
		return err
	}
	addresses, err := encodeAddresses(c.Addresses)
	if err != nil {
		return fmt.Errorf("save customer %s: %w", c.AggregateID(), err)
	}
	payments, err := encodePaymentMethods(c.PaymentMethods)
	if err != nil {
		return fmt.Errorf("save customer %s: %w", c.AggregateID(), err)
	}
	err = t.s.Query(`INSERT INTO `+t.readModel+` (customer_id, email, first_name, last_name, phone, addresses, payment_methods, tier, status, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`,
		id, c.Email.String(), c.FirstName, c.LastName, c.Phone.String(), addresses, payments, c.Tier.String(), c.Status.String(),
		c.Version(), ms(c.CreatedAt), ms(c.UpdatedAt), ts).WithContext(ctx).Exec()
	if err != nil {
		return fmt.Errorf("save customer %s v%d: %w", c.AggregateID(), c.Version(), err)
	}
	return nil
}
