package app

import (
	"context"
	"errors"
	"fmt"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

// fanOutPageSize is how many of a customer's orders are read at a time when their customer
// details change.
const fanOutPageSize = 200

// maxCustomerSync bounds the re-reads of a customer's details after an order write.
const maxCustomerSync = 5

// orderRowCacheSize bounds the order rows an OrdersHandler keeps in memory.
const orderRowCacheSize = 10000

// OrdersHandler builds one version of the orders projection: order_read_model,
// orders_by_customer, orders_by_status from Order events, and customer_contacts (the customer
// details orders carry) from Customer events.
//
// Customer details reach orders two ways, so that neither of two concurrent writers loses the
// other's change: an order write copies the customer's contact row and, after writing, re-reads
// it and patches the order if it changed meanwhile; a customer event writes the contact row
// first, then patches every order of the customer (read through orders_by_customer) whose
// details differ.
//
// The handler keeps the order rows it wrote (the most recent orderRowCacheSize), and applies an
// order's next event to the kept row instead of reading it again: while this member holds the
// order's partition, only it writes the order's state. The consumer drops them all when a new
// group generation starts (ForgetRows), as another member may have written them meanwhile; a
// row kept too long all the same (a former owner of the partition still running) is harmless:
// a write based on it carries an older version's timestamp than the row's and changes nothing
// (docs/read-models.md). Customer details, which other writers patch, are re-checked after
// every write as without the cache.
type OrdersHandler struct {
	tables OrderRows
	heal   healer
	rows   *lru.Cache[string, readmodel.Order]
}

// NewOrdersHandler returns the handler writing tables, healing gaps from src.
func NewOrdersHandler(tables OrderRows, src EventSource) *OrdersHandler {
	rows, _ := lru.New[string, readmodel.Order](orderRowCacheSize) // fails only for a size < 1
	return &OrdersHandler{tables: tables, heal: defaultHealer(src), rows: rows}
}

// ForgetRows drops the order rows kept in memory: the next event of each order reads its row.
func (h *OrdersHandler) ForgetRows() { h.rows.Purge() }

// Project applies an Order or Customer event.
func (h *OrdersHandler) Project(ctx context.Context, env es.Envelope) (Result, error) {
	return h.ProjectStream(ctx, []es.Envelope{env})
}

// ProjectStream applies consecutive events of one Order or Customer.
func (h *OrdersHandler) ProjectStream(ctx context.Context, envs []es.Envelope) (Result, error) {
	if len(envs) == 0 {
		return Result{Duplicate: true}, nil
	}
	env := envs[len(envs)-1]
	switch env.AggregateType {
	case order.AggregateType:
		return h.projectOrder(ctx, env.AggregateID, envs)
	case customer.AggregateType:
		return h.projectContact(ctx, env.AggregateID, envs)
	default:
		return Result{}, Poison(ReasonForeignAggregate, fmt.Errorf("%s: the orders projection holds Order and Customer events", env))
	}
}

// projectOrder applies envs (the last one is env) to the order's row.
func (h *OrdersHandler) projectOrder(ctx context.Context, id string, envs []es.Envelope) (Result, error) {
	env := envs[len(envs)-1]
	var prev *readmodel.Order
	state := order.New(id)
	row, kept := h.rows.Get(id)
	var err error
	if !kept {
		row, err = h.tables.Get(ctx, id)
	}
	// Until this event is written and its customer details checked, the kept row may be wrong.
	h.rows.Remove(id)
	switch {
	case err == nil:
		prev = &row
		cp := *row.State // Apply never writes into the state's slices
		state = &cp
	case errors.Is(err, es.ErrNotFound):
	case errors.Is(err, es.ErrInvalidArgument):
		return Result{}, Poison(ReasonUnappliable, fmt.Errorf("%s: %w", env, err))
	default:
		return Result{}, err
	}
	events, healed, dup, err := h.heal.planStream(ctx, state.Version(), envs)
	if err != nil {
		return Result{}, err
	}
	if dup {
		if env.Sequence == state.Version() {
			// The last attempt may have stopped between its write and the customer re-check
			// (not if the row was kept: that is done once the check passed): its row under the
			// order's new status may hold older details than the other rows (which a fan-out
			// patched, and which are all this row shows), so write the contact's details to
			// every row (idempotent at their version's timestamp).
			if row, err = h.syncCustomer(ctx, row, !kept); err != nil {
				return Result{}, err
			}
		}
		if prev != nil {
			h.rows.Add(id, row)
		}
		return Result{Duplicate: true}, nil
	}
	// The statuses the order passes through before the last event: a healed gap may skip one,
	// and its row must go too (a late write by a former owner of the partition may have put it
	// there).
	var passed []order.Status
	types, err := applyAll(state, events, func(i int) {
		if i < len(events)-1 {
			passed = append(passed, state.Status)
		}
	})
	if err != nil {
		return Result{}, err
	}
	next := readmodel.Order{State: state}
	if prev != nil {
		next.CustomerEmail, next.CustomerName, next.CustomerVersion = prev.CustomerEmail, prev.CustomerName, prev.CustomerVersion
	}
	if prev == nil || prev.State.CustomerID != state.CustomerID {
		c, err := h.tables.Contact(ctx, state.CustomerID)
		switch {
		case err == nil:
			next.CustomerEmail, next.CustomerName, next.CustomerVersion = c.Email, c.Name, c.Version
		case errors.Is(err, es.ErrNotFound): // the customer's events have not arrived yet
		case errors.Is(err, es.ErrInvalidArgument):
			return Result{}, Poison(ReasonUnappliable, fmt.Errorf("%s: %w", env, err))
		default:
			return Result{}, err
		}
	}
	if err := h.tables.Save(ctx, prev, next, passed...); err != nil {
		return Result{}, err
	}
	if next, err = h.syncCustomer(ctx, next, false); err != nil {
		return Result{}, err
	}
	h.rows.Add(id, next)
	return Result{Healed: healed, Applied: types}, nil
}

// syncCustomer re-reads the customer's details after an order write and patches the order when
// a customer event changed them while the order was being written (with force, writes them
// even when o shows them already). It returns the order with the details written.
func (h *OrdersHandler) syncCustomer(ctx context.Context, o readmodel.Order, force bool) (readmodel.Order, error) {
	for range maxCustomerSync {
		c, err := h.tables.Contact(ctx, o.State.CustomerID)
		if errors.Is(err, es.ErrNotFound) {
			return o, nil
		}
		if err != nil {
			return o, err
		}
		if !force && c.Email == o.CustomerEmail && c.Name == o.CustomerName {
			return o, nil
		}
		force = false
		if err := h.tables.SetCustomer(ctx, o, c); err != nil {
			return o, err
		}
		o.CustomerEmail, o.CustomerName, o.CustomerVersion = c.Email, c.Name, c.Version
	}
	return o, nil
}

// projectContact applies envs to the customer's contact row.
func (h *OrdersHandler) projectContact(ctx context.Context, id string, envs []es.Envelope) (Result, error) {
	env := envs[len(envs)-1]
	cur, err := h.tables.Contact(ctx, id)
	switch {
	case err == nil:
	case errors.Is(err, es.ErrNotFound):
		cur = readmodel.Contact{CustomerID: id}
	case errors.Is(err, es.ErrInvalidArgument):
		return Result{}, Poison(ReasonUnappliable, fmt.Errorf("%s: %w", env, err))
	default:
		return Result{}, err
	}
	events, healed, dup, err := h.heal.planStream(ctx, cur.Version, envs)
	if err != nil {
		return Result{}, err
	}
	if dup {
		if env.Sequence == cur.Version {
			// The last attempt may have stopped in the middle of the fan-out.
			if err := h.fanOut(ctx, cur); err != nil {
				return Result{}, err
			}
		}
		return Result{Duplicate: true}, nil
	}
	next := cur
	types := make([]string, 0, len(events))
	for _, e := range events {
		if err := applyContact(&next, e); err != nil {
			return Result{}, err
		}
		types = append(types, e.EventType)
	}
	if err := h.tables.SaveContact(ctx, next); err != nil {
		return Result{}, err
	}
	if next.Email != cur.Email || next.Name != cur.Name {
		if err := h.fanOut(ctx, next); err != nil {
			return Result{}, err
		}
	}
	return Result{Healed: healed, Applied: types}, nil
}

// applyContact applies one Customer event to the contact details.
func applyContact(c *readmodel.Contact, e es.Envelope) error {
	if e.Event == nil {
		return Poison(ReasonUnappliable, fmt.Errorf("%s: no decoded event", e))
	}
	_, isRegister := e.Event.(customer.CustomerRegistered)
	if isRegister != (e.Sequence == 1) {
		return Poison(ReasonUnappliable, fmt.Errorf("%s: CustomerRegistered must be the first event and only the first", e))
	}
	switch ev := e.Event.(type) {
	case customer.CustomerRegistered:
		c.Email, c.Name = ev.Email.String(), readmodel.FullName(ev.FirstName, ev.LastName)
	case customer.CustomerProfileUpdated:
		c.Name = readmodel.FullName(ev.FirstName, ev.LastName)
	case customer.CustomerEmailChanged:
		c.Email = ev.NewEmail.String()
	case customer.CustomerErased: // the orders keep the customer id only
		c.Email, c.Name = "", ""
	}
	c.Version, c.UpdatedAt = e.Sequence, e.OccurredAt
	return nil
}

// fanOut writes the customer's details into every order of the customer that differs.
func (h *OrdersHandler) fanOut(ctx context.Context, c readmodel.Contact) error {
	return h.tables.CustomerOrders(ctx, c.CustomerID, fanOutPageSize, func(o readmodel.Order) error {
		if o.CustomerEmail == c.Email && o.CustomerName == c.Name {
			return nil
		}
		return h.tables.SetCustomer(ctx, o, c)
	})
}
