// Package order is the Order aggregate of ordersys: its state, the commands it accepts, the
// events it emits and the rules that decide between them.
//
// Decide checks a command against the current state and returns the events it produces without
// changing the state; Apply changes the state by one event and never refuses an event the
// aggregate decided, so stored history always replays. The package imports only the standard
// library and the event-sourcing core.
package order

import (
	"fmt"
	"time"

	"github.com/ordersys/ordersys/pkg/es"
)

// AggregateType is the aggregate kind recorded in every Order envelope and snapshot.
const AggregateType = "Order"

// Status is the life-cycle stage of an order.
type Status int32

// The order statuses. StatusUnspecified is the zero value: the order does not exist yet.
// The numbers match the protobuf enum orders.v1.OrderStatus.
const (
	// StatusUnspecified marks an order that has not been created.
	StatusUnspecified Status = iota
	// StatusCreated is a new order whose items may still change.
	StatusCreated
	// StatusConfirmed is an order accepted for fulfilment.
	StatusConfirmed
	// StatusShipped is an order handed to a carrier.
	StatusShipped
	// StatusDelivered is an order received by the customer; it is final.
	StatusDelivered
	// StatusCancelled is an order that will not be fulfilled; it is final.
	StatusCancelled
)

// String returns the status name in upper case, e.g. "CREATED".
func (s Status) String() string {
	switch s {
	case StatusUnspecified:
		return "UNSPECIFIED"
	case StatusCreated:
		return "CREATED"
	case StatusConfirmed:
		return "CONFIRMED"
	case StatusShipped:
		return "SHIPPED"
	case StatusDelivered:
		return "DELIVERED"
	case StatusCancelled:
		return "CANCELLED"
	default:
		return fmt.Sprintf("Status(%d)", int32(s))
	}
}

// ParseStatus returns the status with the given upper-case name ("CREATED", …).
func ParseStatus(name string) (Status, error) {
	for s := StatusCreated; s <= StatusCancelled; s++ {
		if s.String() == name {
			return s, nil
		}
	}
	return StatusUnspecified, fmt.Errorf("unknown order status %q", name)
}

// Item is one order line: a product, how many of it, and its price per unit in cents.
type Item struct {
	// ProductID is the product's UUID.
	ProductID string
	// Quantity is the number of units, 1 to MaxQuantity.
	Quantity int32
	// UnitPriceCents is the price of one unit in cents, never negative.
	UnitPriceCents int64
}

// Order is the Order aggregate's state.
type Order struct {
	es.Root
	// CustomerID is the UUID of the customer who placed the order.
	CustomerID string
	// Items are the order lines, in the order they were given.
	Items []Item
	// Status is the order's life-cycle stage.
	Status Status
	// TotalCents is the sum of quantity × unit price over the items.
	TotalCents int64
	// TrackingNumber is the carrier's tracking number, set when shipped.
	TrackingNumber string
	// Carrier names the carrier, set when shipped.
	Carrier string
	// CancelReason is the reason given when the order was cancelled.
	CancelReason string
	// DeliverySignature is the signature given on delivery (may be empty).
	DeliverySignature string
	// CreatedAt is when the order was created (UTC).
	CreatedAt time.Time
	// UpdatedAt is when the last event happened (UTC).
	UpdatedAt time.Time
}

// New returns the order with the given id at version 0, before its creation event.
func New(id string) *Order { return &Order{Root: es.NewRoot(id)} }

// AggregateType returns "Order".
func (o *Order) AggregateType() string { return AggregateType }

// Apply changes the state by one event that occurred at the given time. The first event must be
// OrderCreated, and OrderCreated only ever comes first; beyond that Apply checks no rule.
func (o *Order) Apply(e es.Event, at time.Time) error {
	created := o.Status != StatusUnspecified
	if _, isCreate := e.(OrderCreated); isCreate == created {
		if created {
			return fmt.Errorf("order %s: %s after the order was created", o.AggregateID(), e.EventType())
		}
		return fmt.Errorf("order %s: first event is %s, want OrderCreated", o.AggregateID(), e.EventType())
	}
	at = at.UTC()
	switch ev := e.(type) {
	case OrderCreated:
		o.CustomerID = ev.CustomerID
		o.Items = cloneItems(ev.Items)
		o.TotalCents = ev.TotalCents
		o.Status = StatusCreated
		o.CreatedAt = at
	case OrderItemsUpdated:
		o.Items = cloneItems(ev.Items)
		o.TotalCents = ev.TotalCents
	case OrderConfirmed:
		o.Status = StatusConfirmed
	case OrderShipped:
		o.Status = StatusShipped
		o.TrackingNumber = ev.TrackingNumber
		o.Carrier = ev.Carrier
	case OrderDelivered:
		o.Status = StatusDelivered
		o.DeliverySignature = ev.Signature
	case OrderCancelled:
		o.Status = StatusCancelled
		o.CancelReason = ev.Reason
	default:
		return fmt.Errorf("order %s: unexpected event %T (%s)", o.AggregateID(), e, e.EventType())
	}
	o.UpdatedAt = at
	return nil
}

func cloneItems(items []Item) []Item {
	if items == nil {
		return nil
	}
	return append([]Item(nil), items...)
}
