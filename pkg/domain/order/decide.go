package order

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
)

// Stable identifiers of the order's business rules, carried by es.RuleError.Rule.
const (
	// RuleUpdateItemsRequiresCreated: items change only while the order is CREATED.
	RuleUpdateItemsRequiresCreated = "order.update_items.requires_created"
	// RuleUpdateItemsUnchanged: an update must change the items.
	RuleUpdateItemsUnchanged = "order.update_items.unchanged"
	// RuleConfirmRequiresCreated: only a CREATED order can be confirmed.
	RuleConfirmRequiresCreated = "order.confirm.requires_created"
	// RuleShipRequiresConfirmed: only a CONFIRMED order can ship.
	RuleShipRequiresConfirmed = "order.ship.requires_confirmed"
	// RuleDeliverRequiresShipped: only a SHIPPED order can be delivered.
	RuleDeliverRequiresShipped = "order.deliver.requires_shipped"
	// RuleCancelNotDelivered: a DELIVERED order cannot be cancelled.
	RuleCancelNotDelivered = "order.cancel.not_delivered"
	// RuleCancelNotCancelled: a CANCELLED order cannot be cancelled again.
	RuleCancelNotCancelled = "order.cancel.not_cancelled"
	// RuleCreateCustomerExists: an order belongs to a registered customer.
	RuleCreateCustomerExists = "order.create.customer_exists"
	// RuleCreateCustomerActive: only an ACTIVE customer may place an order (not a suspended or
	// deactivated one).
	RuleCreateCustomerActive = "order.create.customer_active"
)

// Decide checks cmd against the order's current state and returns the events it produces,
// without changing the state. It validates the input first (an *es.ValidationError), then
// existence (Create on an existing order wraps es.ErrAlreadyExists; any other command on an
// order at version 0 wraps es.ErrNotFound), then the business rules (an *es.RuleError). now is
// the decision time; no order rule depends on it today.
func (o *Order) Decide(cmd Command, now time.Time) ([]es.Event, error) {
	if cmd == nil {
		return nil, errors.New("order: nil command")
	}
	switch cmd.(type) {
	case Create, UpdateItems, Confirm, Ship, Deliver, Cancel:
	default:
		return nil, fmt.Errorf("order: unsupported command %T", cmd)
	}
	if err := cmd.Validate(); err != nil {
		return nil, err
	}
	if _, isCreate := cmd.(Create); isCreate {
		if o.Version() > 0 {
			return nil, fmt.Errorf("order %s: %w", o.AggregateID(), es.ErrAlreadyExists)
		}
	} else if o.Version() == 0 {
		return nil, fmt.Errorf("order %s: %w", o.AggregateID(), es.ErrNotFound)
	}
	switch c := cmd.(type) {
	case Create:
		return o.create(c)
	case UpdateItems:
		return o.updateItems(c)
	case Confirm:
		if o.Status != StatusCreated {
			return nil, es.Rule(RuleConfirmRequiresCreated, "order is %s; only a CREATED order can be confirmed", o.Status)
		}
		return []es.Event{OrderConfirmed{}}, nil
	case Ship:
		if o.Status != StatusConfirmed {
			return nil, es.Rule(RuleShipRequiresConfirmed, "order is %s; only a CONFIRMED order can ship", o.Status)
		}
		return []es.Event{OrderShipped{
			TrackingNumber: strings.TrimSpace(c.TrackingNumber),
			Carrier:        strings.TrimSpace(c.Carrier),
		}}, nil
	case Deliver:
		if o.Status != StatusShipped {
			return nil, es.Rule(RuleDeliverRequiresShipped, "order is %s; only a SHIPPED order can be delivered", o.Status)
		}
		return []es.Event{OrderDelivered{Signature: strings.TrimSpace(c.Signature)}}, nil
	case Cancel:
		switch o.Status {
		case StatusDelivered:
			return nil, es.Rule(RuleCancelNotDelivered, "order is DELIVERED; a delivered order cannot be cancelled")
		case StatusCancelled:
			return nil, es.Rule(RuleCancelNotCancelled, "order is already CANCELLED")
		}
		return []es.Event{OrderCancelled{
			Reason:      strings.TrimSpace(c.Reason),
			CancelledBy: strings.TrimSpace(c.CancelledBy),
		}}, nil
	default: // unreachable: the first switch admits only the cases above
		return nil, fmt.Errorf("order: unsupported command %T", cmd)
	}
}

func (o *Order) create(c Create) ([]es.Event, error) {
	orderID, customerID := ids.Canonical(c.OrderID), ids.Canonical(c.CustomerID)
	if orderID != o.AggregateID() {
		return nil, es.Invalid("order_id", fmt.Sprintf("is %s but the command was sent to order %s", orderID, o.AggregateID()))
	}
	switch c.Customer {
	case CustomerActive:
	case CustomerMissing:
		return nil, &es.RuleError{Rule: RuleCreateCustomerExists, Subject: customerID,
			Reason: fmt.Sprintf("customer %s is not registered; register the customer before ordering", customerID)}
	case CustomerUnchecked:
		return nil, &es.RuleError{Rule: RuleCreateCustomerExists, Subject: customerID,
			Reason: fmt.Sprintf("customer %s was not looked up; an order needs a checked, active customer", customerID)}
	default:
		return nil, &es.RuleError{Rule: RuleCreateCustomerActive, Subject: customerID,
			Reason: fmt.Sprintf("customer %s is %s; only an ACTIVE customer may place an order", customerID, c.Customer)}
	}
	items := canonicalItems(c.Items)
	total, err := Total(items)
	if err != nil { // unreachable after Validate; kept so a total is never guessed
		return nil, es.Invalid("items", err.Error())
	}
	return []es.Event{OrderCreated{
		OrderID:    orderID,
		CustomerID: customerID,
		Items:      items,
		TotalCents: total,
	}}, nil
}

// canonicalItems copies items with each product id in canonical form (ids.Canonical), the
// form the order stores and compares.
func canonicalItems(items []Item) []Item {
	out := cloneItems(items)
	for i := range out {
		out[i].ProductID = ids.Canonical(out[i].ProductID)
	}
	return out
}

func (o *Order) updateItems(c UpdateItems) ([]es.Event, error) {
	if o.Status != StatusCreated {
		return nil, es.Rule(RuleUpdateItemsRequiresCreated, "order is %s; items can change only while the order is CREATED", o.Status)
	}
	items := canonicalItems(c.Items)
	if slices.Equal(canonicalItems(o.Items), items) { // older orders may hold upper-case ids
		return nil, es.Rule(RuleUpdateItemsUnchanged, "the new items are the order's current items; nothing to update")
	}
	total, err := Total(items)
	if err != nil {
		return nil, es.Invalid("items", err.Error())
	}
	return []es.Event{OrderItemsUpdated{
		Items:      items,
		TotalCents: total,
		Reason:     strings.TrimSpace(c.Reason),
	}}, nil
}
