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

// contactCacheSize bounds the customer details an OrdersHandler remembers.
const contactCacheSize = 10000

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
//
// It also remembers the customer details it last read or wrote (contacts), each for at most
// contactTTL (30 s: personal data, docs/privacy.md): a new order's first write copies them
// from there instead of reading the contact row first. They are only
// a first guess: the re-read after the write, which is never skipped, patches the order when
// they were out of date, and details of an older customer version cannot replace newer ones
// (their write timestamp is lower).
type OrdersHandler struct {
	tables   OrderRows
	heal     healer
	rows     *lru.Cache[string, readmodel.Order]
	contacts *contactCache
}

// NewOrdersHandler returns the handler writing tables, healing gaps from src.
func NewOrdersHandler(tables OrderRows, src EventSource) *OrdersHandler {
	rows, _ := lru.New[string, readmodel.Order](orderRowCacheSize) // fails only for a size < 1
	return &OrdersHandler{tables: tables, heal: defaultHealer(src), rows: rows, contacts: newContactCache(contactCacheSize)}
}

// ForgetRows drops the order rows kept in memory: the next event of each order reads its row.
func (h *OrdersHandler) ForgetRows() { h.rows.Purge() }

// Project applies an Order or Customer event.
func (h *OrdersHandler) Project(ctx context.Context, env es.Envelope) (Result, error) {
	return h.ProjectStream(ctx, []es.Envelope{env})
}

// ProjectThen applies an Order or Customer event; for an Order event it returns the re-check
// of the customer's details that follows the order write as then (Finisher).
func (h *OrdersHandler) ProjectThen(ctx context.Context, env es.Envelope) (Result, func(ctx context.Context) error, error) {
	if env.AggregateType != order.AggregateType {
		res, err := h.Project(ctx, env)
		return res, nil, err
	}
	return h.writeOrder(ctx, env.AggregateID, []es.Envelope{env})
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

// projectOrder applies envs (the last one is env) to the order's row and re-checks the
// customer's details.
func (h *OrdersHandler) projectOrder(ctx context.Context, id string, envs []es.Envelope) (Result, error) {
	res, then, err := h.writeOrder(ctx, id, envs)
	if err != nil || then == nil {
		return res, err
	}
	if err := then(ctx); err != nil {
		return Result{}, err
	}
	return res, nil
}

// writeOrder applies envs (the last one is env) to the order's row and returns, as then, what
// is left to do once the row is written: re-check the customer's details (syncCustomer) and
// keep the row. Until then has returned nil, the order's row is not kept.
func (h *OrdersHandler) writeOrder(ctx context.Context, id string, envs []es.Envelope) (Result, func(context.Context) error, error) {
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
		return Result{}, nil, Poison(ReasonUnappliable, fmt.Errorf("%s: %w", env, err))
	default:
		return Result{}, nil, err
	}
	events, healed, dup, err := h.heal.planStream(ctx, state.Version(), envs)
	if err != nil {
		return Result{}, nil, err
	}
	if dup {
		if env.Sequence == state.Version() {
			// The last attempt may have stopped between its write and the customer re-check
			// (not if the row was kept: that is done once the check passed): its row under the
			// order's new status may hold older details than the other rows (which a fan-out
			// patched, and which are all this row shows), so write the contact's details to
			// every row (idempotent at their version's timestamp).
			if row, err = h.syncCustomer(ctx, row, !kept); err != nil {
				return Result{}, nil, err
			}
		}
		if prev != nil {
			h.rows.Add(id, row)
		}
		return Result{Duplicate: true}, nil, nil
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
		return Result{}, nil, err
	}
	next := readmodel.Order{State: state}
	if prev != nil {
		next.CustomerEmail, next.CustomerName, next.CustomerVersion = prev.CustomerEmail, prev.CustomerName, prev.CustomerVersion
	}
	if prev == nil || prev.State.CustomerID != state.CustomerID {
		c, err := h.knownContact(ctx, state.CustomerID)
		switch {
		case err == nil:
			next.CustomerEmail, next.CustomerName, next.CustomerVersion = c.Email, c.Name, c.Version
		case errors.Is(err, es.ErrNotFound): // the customer's events have not arrived yet
		case errors.Is(err, es.ErrInvalidArgument):
			return Result{}, nil, Poison(ReasonUnappliable, fmt.Errorf("%s: %w", env, err))
		default:
			return Result{}, nil, err
		}
	}
	if err := h.tables.Save(ctx, prev, next, passed...); err != nil {
		return Result{}, nil, err
	}
	then := func(ctx context.Context) error {
		synced, err := h.syncCustomer(ctx, next, false)
		if err != nil {
			return err
		}
		h.rows.Add(id, synced)
		return nil
	}
	return Result{Healed: healed, Applied: types}, then, nil
}

// syncCustomer re-reads the customer's details after an order write and patches the order when
// a customer event changed them while the order was being written, or when the contact row's
// version is newer than the order's customer version (with force, writes them even when o
// shows them already). It returns the order with the details written.
func (h *OrdersHandler) syncCustomer(ctx context.Context, o readmodel.Order, force bool) (readmodel.Order, error) {
	for range maxCustomerSync {
		c, err := h.readContact(ctx, o.State.CustomerID)
		if errors.Is(err, es.ErrNotFound) {
			return o, nil
		}
		if err != nil {
			return o, err
		}
		// A newer contact version than the row's is written too, even with the same details:
		// the row then carries the version its details come from.
		if !force && c.Email == o.CustomerEmail && c.Name == o.CustomerName && c.Version <= o.CustomerVersion {
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

// knownContact returns the customer's details as this handler last saw them, reading the
// contact row when it has not seen them. The answer may be out of date: use it only where the
// contact row is read again after the write (syncCustomer).
func (h *OrdersHandler) knownContact(ctx context.Context, customerID string) (readmodel.Contact, error) {
	if k, ok := h.contacts.get(customerID); ok {
		if !k.found {
			return readmodel.Contact{}, fmt.Errorf("contact %s: %w", customerID, es.ErrNotFound)
		}
		return k.c, nil
	}
	return h.readContact(ctx, customerID)
}

// readContact reads the customer's contact row and remembers what it found.
func (h *OrdersHandler) readContact(ctx context.Context, customerID string) (readmodel.Contact, error) {
	c, err := h.tables.Contact(ctx, customerID)
	switch {
	case err == nil:
		h.rememberContact(customerID, knownContact{c: c, found: true})
	case errors.Is(err, es.ErrNotFound):
		h.rememberContact(customerID, knownContact{})
	}
	return c, err
}

// rememberContact keeps k as the customer's details, for contactTTL, unless newer ones are kept
// already (two lanes may read the same contact row at once): contactCache.put.
func (h *OrdersHandler) rememberContact(customerID string, k knownContact) {
	h.contacts.put(customerID, k)
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
	h.rememberContact(id, knownContact{c: next, found: true})
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
