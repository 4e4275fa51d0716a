package order

// Event type names, as stored in every envelope.
const (
	// EventOrderCreated names OrderCreated.
	EventOrderCreated = "OrderCreated"
	// EventOrderItemsUpdated names OrderItemsUpdated.
	EventOrderItemsUpdated = "OrderItemsUpdated"
	// EventOrderConfirmed names OrderConfirmed.
	EventOrderConfirmed = "OrderConfirmed"
	// EventOrderShipped names OrderShipped.
	EventOrderShipped = "OrderShipped"
	// EventOrderDelivered names OrderDelivered.
	EventOrderDelivered = "OrderDelivered"
	// EventOrderCancelled names OrderCancelled.
	EventOrderCancelled = "OrderCancelled"
)

// OrderCreated records that a customer placed an order.
type OrderCreated struct {
	// OrderID is the new order's UUID.
	OrderID string
	// CustomerID is the UUID of the customer who placed it.
	CustomerID string
	// Items are the order lines.
	Items []Item
	// TotalCents is the order total in cents.
	TotalCents int64
}

// EventType returns "OrderCreated".
func (OrderCreated) EventType() string { return EventOrderCreated }

// OrderItemsUpdated records that the lines of a CREATED order were replaced.
type OrderItemsUpdated struct {
	// Items are the new order lines, replacing the old ones.
	Items []Item
	// TotalCents is the new total in cents.
	TotalCents int64
	// Reason says why the items changed (may be empty).
	Reason string
}

// EventType returns "OrderItemsUpdated".
func (OrderItemsUpdated) EventType() string { return EventOrderItemsUpdated }

// OrderConfirmed records that the order was accepted for fulfilment.
type OrderConfirmed struct{}

// EventType returns "OrderConfirmed".
func (OrderConfirmed) EventType() string { return EventOrderConfirmed }

// OrderShipped records that the order was handed to a carrier.
type OrderShipped struct {
	// TrackingNumber is the carrier's tracking number.
	TrackingNumber string
	// Carrier names the carrier.
	Carrier string
}

// EventType returns "OrderShipped".
func (OrderShipped) EventType() string { return EventOrderShipped }

// OrderDelivered records that the customer received the order.
type OrderDelivered struct {
	// Signature is the name or mark given on receipt (may be empty).
	Signature string
}

// EventType returns "OrderDelivered".
func (OrderDelivered) EventType() string { return EventOrderDelivered }

// OrderCancelled records that the order will not be fulfilled.
type OrderCancelled struct {
	// Reason says why (may be empty).
	Reason string
	// CancelledBy names who cancelled it (may be empty).
	CancelledBy string
}

// EventType returns "OrderCancelled".
func (OrderCancelled) EventType() string { return EventOrderCancelled }
