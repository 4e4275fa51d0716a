package order

import (
	"errors"
	"math"
	"strconv"

	"github.com/ordersys/ordersys/pkg/domain/check"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
)

// Input limits enforced by the commands' Validate methods.
const (
	// MaxItems is the largest number of lines an order may hold.
	MaxItems = 100
	// MaxQuantity is the largest quantity of one line.
	MaxQuantity = 10000
	// MaxUnitPriceCents is the largest unit price, in cents (100 million currency units). With
	// MaxItems and MaxQuantity it bounds every total by MaxTotalCents, so no sum can overflow.
	MaxUnitPriceCents int64 = 10_000_000_000
	// MaxTotalCents is the largest total an order can reach: MaxItems × MaxQuantity ×
	// MaxUnitPriceCents = 10^16 cents, three orders of magnitude below the int64 limit.
	MaxTotalCents = MaxItems * MaxQuantity * MaxUnitPriceCents
	// MaxReasonLen bounds an items-update or cancellation reason, in characters.
	MaxReasonLen = 500
	// MaxShippingFieldLen bounds the tracking number and the carrier, in characters.
	MaxShippingFieldLen = 100
	// MaxSignatureLen bounds the delivery signature, in characters.
	MaxSignatureLen = 200
	// MaxCancelledByLen bounds who cancelled an order, in characters.
	MaxCancelledByLen = 100
)

// ErrTotalOverflow reports items whose total does not fit in int64 cents.
var ErrTotalOverflow = errors.New("order total overflows int64 cents")

// Total returns the sum of quantity × unit price over the items, or ErrTotalOverflow.
func Total(items []Item) (int64, error) {
	var total int64
	for _, it := range items {
		line, ok := lineTotal(it)
		if !ok || total > math.MaxInt64-line {
			return 0, ErrTotalOverflow
		}
		total += line
	}
	return total, nil
}

// lineTotal multiplies quantity by unit price for non-negative inputs, reporting overflow.
func lineTotal(it Item) (int64, bool) {
	q, p := int64(it.Quantity), it.UnitPriceCents
	if q < 0 || p < 0 {
		return 0, false
	}
	if q != 0 && p > math.MaxInt64/q {
		return 0, false
	}
	return q * p, true
}

// Command is a request to change an order. The set of commands is closed: only the types of
// this package implement it.
type Command interface {
	// Validate checks the command's input regardless of the order's state and returns an
	// *es.ValidationError naming every bad field, or nil.
	Validate() error
	isOrderCommand()
}

// Create places a new order.
type Create struct {
	// OrderID is the new order's UUID; it must be the id of the aggregate deciding.
	OrderID string
	// CustomerID is the UUID of the customer placing the order.
	CustomerID string
	// Items are the order lines: 1 to MaxItems, each product at most once.
	Items []Item
	// Customer is the customer's standing as the caller read it from the event store just
	// before deciding; Decide refuses the order unless it is CustomerActive. The zero value,
	// CustomerUnchecked, is refused too, so a caller that forgets the look-up cannot place an
	// order for a customer nobody checked.
	Customer CustomerStanding
}

// CustomerStanding is what an order knows of its customer when it is placed.
type CustomerStanding int

const (
	// CustomerUnchecked means nobody looked the customer up (the zero value; refused).
	CustomerUnchecked CustomerStanding = iota
	// CustomerMissing means the event store holds no such customer.
	CustomerMissing
	// CustomerActive means the customer exists and may order.
	CustomerActive
	// CustomerSuspended means the customer exists but is suspended.
	CustomerSuspended
	// CustomerDeactivated means the customer's account is closed for good.
	CustomerDeactivated
)

// String names the standing in upper case, e.g. "SUSPENDED".
func (s CustomerStanding) String() string {
	switch s {
	case CustomerMissing:
		return "MISSING"
	case CustomerActive:
		return "ACTIVE"
	case CustomerSuspended:
		return "SUSPENDED"
	case CustomerDeactivated:
		return "DEACTIVATED"
	default:
		return "UNCHECKED"
	}
}

// UpdateItems replaces the lines of a CREATED order.
type UpdateItems struct {
	// Items are the new lines, checked like Create's.
	Items []Item
	// Reason says why (optional, at most MaxReasonLen characters).
	Reason string
}

// Confirm accepts a CREATED order for fulfilment.
type Confirm struct{}

// Ship hands a CONFIRMED order to a carrier.
type Ship struct {
	// TrackingNumber is required, trimmed, at most MaxShippingFieldLen characters.
	TrackingNumber string
	// Carrier is required, trimmed, at most MaxShippingFieldLen characters.
	Carrier string
}

// Deliver records that a SHIPPED order reached the customer.
type Deliver struct {
	// Signature is optional, trimmed, at most MaxSignatureLen characters.
	Signature string
}

// Cancel stops an order that is neither DELIVERED nor already CANCELLED.
type Cancel struct {
	// Reason is required, trimmed, at most MaxReasonLen characters; the order keeps it.
	Reason string
	// CancelledBy names who cancelled (optional, at most MaxCancelledByLen characters).
	CancelledBy string
}

func (Create) isOrderCommand()      {}
func (UpdateItems) isOrderCommand() {}
func (Confirm) isOrderCommand()     {}
func (Ship) isOrderCommand()        {}
func (Deliver) isOrderCommand()     {}
func (Cancel) isOrderCommand()      {}

// Validate checks the ids and the items.
func (c Create) Validate() error {
	var v es.Violations
	check.UUID(&v, "order_id", ids.Canonical(c.OrderID))
	check.UUID(&v, "customer_id", ids.Canonical(c.CustomerID))
	validateItems(&v, c.Items)
	return v.Err()
}

// Validate checks the items and the reason.
func (c UpdateItems) Validate() error {
	var v es.Violations
	validateItems(&v, c.Items)
	check.Text(&v, "reason", c.Reason, MaxReasonLen, false)
	return v.Err()
}

// Validate accepts every Confirm: it has no input.
func (Confirm) Validate() error { return nil }

// Validate checks the tracking number and the carrier.
func (c Ship) Validate() error {
	var v es.Violations
	check.Text(&v, "tracking_number", c.TrackingNumber, MaxShippingFieldLen, true)
	check.Text(&v, "carrier", c.Carrier, MaxShippingFieldLen, true)
	return v.Err()
}

// Validate checks the signature.
func (c Deliver) Validate() error {
	var v es.Violations
	check.Text(&v, "signature", c.Signature, MaxSignatureLen, false)
	return v.Err()
}

// Validate checks the reason and who cancelled.
func (c Cancel) Validate() error {
	var v es.Violations
	check.Text(&v, "reason", c.Reason, MaxReasonLen, true)
	check.Text(&v, "cancelled_by", c.CancelledBy, MaxCancelledByLen, false)
	return v.Err()
}

// validateItems records every problem of an item list: emptiness, count, each line's fields
// and repeated products. The bounds on count, quantity and unit price keep every total at most
// MaxTotalCents, so no sum overflows.
func validateItems(v *es.Violations, items []Item) {
	switch {
	case len(items) == 0:
		v.Add("items", "must hold at least one item")
	case len(items) > MaxItems:
		v.Addf("items", "must hold at most %d items, got %d", MaxItems, len(items))
	}
	seen := make(map[string]int, min(len(items), MaxItems))
	for i, it := range items[:min(len(items), MaxItems)] { // past MaxItems only the count matters
		p := "items[" + strconv.Itoa(i) + "]."
		if key := ids.Canonical(it.ProductID); check.UUID(v, p+"product_id", key) {
			if j, dup := seen[key]; dup {
				v.Addf(p+"product_id", "repeats items[%d].product_id; give each product once with its total quantity", j)
			} else {
				seen[key] = i
			}
		}
		switch {
		case it.Quantity <= 0:
			v.Addf(p+"quantity", "must be greater than 0, got %d", it.Quantity)
		case it.Quantity > MaxQuantity:
			v.Addf(p+"quantity", "must be at most %d, got %d", MaxQuantity, it.Quantity)
		}
		switch {
		case it.UnitPriceCents < 0:
			v.Addf(p+"unit_price_cents", "must not be negative, got %d", it.UnitPriceCents)
		case it.UnitPriceCents > MaxUnitPriceCents:
			v.Addf(p+"unit_price_cents", "must be at most %d, got %d", MaxUnitPriceCents, it.UnitPriceCents)
		}
	}
}
