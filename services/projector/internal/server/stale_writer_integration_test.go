package server_test

import (
	"testing"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/services/projector/internal/app"
)

// staleWrite is what a worker that lost its partition in a rebalance does late: it read the
// row at prev, applied env, and its write lands only now.
func staleWrite(t *testing.T, e *env, tables readmodel.OrderTables, prev readmodel.Order, env es.Envelope) {
	t.Helper()
	cp := *prev.State
	if err := es.ApplyEnvelope(&cp, env); err != nil {
		t.Fatal(err)
	}
	next := prev
	next.State = &cp
	if err := tables.Save(e.ctx(), &prev, next); err != nil {
		t.Fatalf("late write of v%d: %v", cp.Version(), err)
	}
}

// project applies envelopes through the handler as the partition's current owner does.
func project(t *testing.T, e *env, h app.Handler, envs ...es.Envelope) {
	t.Helper()
	for _, env := range envs {
		if _, err := h.Project(e.ctx(), env); err != nil {
			t.Fatalf("project %s: %v", env, err)
		}
	}
}

// assertOnlyListedUnder checks the order's row version and that it is listed under its status
// and under no other.
func assertOnlyListedUnder(t *testing.T, e *env, tables readmodel.OrderTables, id string, version int64, st order.Status) {
	t.Helper()
	got, err := tables.Get(e.ctx(), id)
	if err != nil {
		t.Fatal(err)
	}
	if got.State.Version() != version || got.State.Status != st {
		t.Errorf("order_read_model: v%d %s, want v%d %s", got.State.Version(), got.State.Status, version, st)
	}
	byCustomer, err := tables.ListByCustomer(e.ctx(), got.State.CustomerID, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range byCustomer.Orders {
		if o.State.AggregateID() == id && (o.State.Version() != version || o.State.Status != st) {
			t.Errorf("orders_by_customer: v%d %s, want v%d %s", o.State.Version(), o.State.Status, version, st)
		}
	}
	for s := order.StatusCreated; s <= order.StatusCancelled; s++ {
		p, err := tables.ListByStatus(e.ctx(), s, 50, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range p.Orders {
			if o.State.AggregateID() != id {
				continue
			}
			if s != st {
				t.Errorf("orders_by_status: listed under %s (row v%d), the order is %s", s, o.State.Version(), st)
			} else if o.State.Version() != version {
				t.Errorf("orders_by_status %s: row v%d, want v%d", s, o.State.Version(), version)
			}
		}
	}
}

// TestLateWriteOfAFormerOwnerNeverMovesARowBack is finding 2 of issue 11: a worker whose
// partition was revoked writes version 6 (SHIPPED) after the new owner wrote version 7
// (DELIVERED). The row must stay at 7 in all three tables, and the order must not be listed as
// SHIPPED (a delivered order gets no later event that would heal it).
func TestLateWriteOfAFormerOwnerNeverMovesARowBack(t *testing.T) {
	e := newEnv(t)
	_, custEvents := e.newCustomer("Ada", "Lovelace", "ada@example.com")
	o, envs := e.newOrder(custEvents[0].AggregateID, 1)
	for q := range 3 {
		envs = append(envs, e.append(o, order.OrderItemsUpdated{Items: []order.Item{{ProductID: gocql.TimeUUID().String(), Quantity: int32(q + 2), UnitPriceCents: 100}}, TotalCents: int64(q+2) * 100})...)
	}
	envs = append(envs, e.append(o, order.OrderConfirmed{})...)
	envs = append(envs, e.append(o, order.OrderShipped{TrackingNumber: "TN-6", Carrier: "UPS"})...)
	envs = append(envs, e.append(o, order.OrderDelivered{Signature: "A. L."})...)
	tables := readmodel.NewOrderTables(e.s, 1)
	h := app.NewOrdersHandler(tables, e.store)
	project(t, e, h, custEvents...)
	project(t, e, h, envs[:5]...)

	v5, err := tables.Get(e.ctx(), o.AggregateID()) // the former owner reads v5 …
	if err != nil {
		t.Fatal(err)
	}
	project(t, e, h, envs[5:]...)         // … the new owner writes v6 and v7 …
	staleWrite(t, e, tables, v5, envs[5]) // … and the former owner's v6 lands last.
	assertOnlyListedUnder(t, e, tables, o.AggregateID(), 7, order.StatusDelivered)
}

// TestLateWriteAcrossAHealedGapLeavesNoStatusRow: the new owner heals a gap across the status
// the former owner's late write puts the order in (v1 CREATED → v3 SHIPPED, healing v2
// CONFIRMED, while the former owner writes v2 CONFIRMED late). No CONFIRMED row may stay.
func TestLateWriteAcrossAHealedGapLeavesNoStatusRow(t *testing.T) {
	e := newEnv(t)
	o, envs := e.newOrder(gocql.TimeUUID().String(), 1)
	envs = append(envs, e.append(o, order.OrderConfirmed{})...)
	envs = append(envs, e.append(o, order.OrderShipped{TrackingNumber: "TN-3", Carrier: "DHL"})...)
	tables := readmodel.NewOrderTables(e.s, 1)
	h := app.NewOrdersHandler(tables, e.store)
	project(t, e, h, envs[0])

	v1, err := tables.Get(e.ctx(), o.AggregateID())
	if err != nil {
		t.Fatal(err)
	}
	project(t, e, h, envs[2]) // gap: v2 healed from the event store
	staleWrite(t, e, tables, v1, envs[1])
	assertOnlyListedUnder(t, e, tables, o.AggregateID(), 3, order.StatusShipped)
}

// TestOlderCustomerDetailsNeverReplaceNewerOnes: a fan-out of customer version 1 that lands
// after the one of version 2 leaves the details of version 2.
func TestOlderCustomerDetailsNeverReplaceNewerOnes(t *testing.T) {
	e := newEnv(t)
	custID := gocql.TimeUUID().String()
	o, envs := e.newOrder(custID, 1)
	tables := readmodel.NewOrderTables(e.s, 1)
	project(t, e, app.NewOrdersHandler(tables, e.store), envs...)
	row, err := tables.Get(e.ctx(), o.AggregateID())
	if err != nil {
		t.Fatal(err)
	}
	newer := readmodel.Contact{CustomerID: custID, Email: "new@example.com", Name: "Ada King", Version: 2}
	older := readmodel.Contact{CustomerID: custID, Email: "old@example.com", Name: "Ada Lovelace", Version: 1}
	for _, c := range []readmodel.Contact{newer, older} {
		if err := tables.SetCustomer(e.ctx(), row, c); err != nil {
			t.Fatal(err)
		}
	}
	got, err := tables.Get(e.ctx(), o.AggregateID())
	if err != nil {
		t.Fatal(err)
	}
	if got.CustomerEmail != newer.Email || got.CustomerName != newer.Name || got.CustomerVersion != 2 {
		t.Fatalf("customer details %q %q v%d, want those of version 2", got.CustomerEmail, got.CustomerName, got.CustomerVersion)
	}
	p, err := tables.ListByStatus(e.ctx(), order.StatusCreated, 50, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range p.Orders {
		if l.State.AggregateID() == o.AggregateID() && l.CustomerEmail != newer.Email {
			t.Fatalf("orders_by_status row holds %q, want %q", l.CustomerEmail, newer.Email)
		}
	}
}

// orderWithHistory is an order of six events: created, three item updates, confirmed, shipped.
func orderWithHistory(e *env) (*order.Order, []es.Envelope) {
	o, envs := e.newOrder(gocql.TimeUUID().String(), 1)
	for q := range 3 {
		envs = append(envs, e.append(o, order.OrderItemsUpdated{Items: []order.Item{{ProductID: gocql.TimeUUID().String(), Quantity: int32(q + 2), UnitPriceCents: 100}}, TotalCents: int64(q+2) * 100})...)
	}
	envs = append(envs, e.append(o, order.OrderConfirmed{})...)
	return o, append(envs, e.append(o, order.OrderShipped{TrackingNumber: "TN-6", Carrier: "UPS"})...)
}

// TestKeptRowOfAFormerOwnerNeverMovesARowBack: the orders handler applies an order's next event
// to the row it kept in memory. A member that lost the partition without noticing (paused past
// its session) still holds the order at v4 while the new owner wrote v5 and v6 (SHIPPED); the
// former owner then gets v5 and v6 again: its writes, based on its kept rows, change nothing,
// and the order stays at v6, listed under SHIPPED only.
func TestKeptRowOfAFormerOwnerNeverMovesARowBack(t *testing.T) {
	e := newEnv(t)
	o, envs := orderWithHistory(e)
	tables := readmodel.NewOrderTables(e.s, 1)
	former, owner := app.NewOrdersHandler(tables, e.store), app.NewOrdersHandler(tables, e.store)
	project(t, e, former, envs[:4]...) // former keeps v4
	project(t, e, owner, envs[4:]...)  // owner reads v4, writes v5 and v6
	project(t, e, former, envs[4:]...) // former, late, from its kept v4
	assertOnlyListedUnder(t, e, tables, o.AggregateID(), 6, order.StatusShipped)
}

// TestForgetRowsReadsTheRowsAgain: a handler applies an order's next event to its kept row,
// healing from the event store what another member wrote meanwhile; after ForgetRows (a new
// group generation) it reads the row instead, and heals nothing.
func TestForgetRowsReadsTheRowsAgain(t *testing.T) {
	e := newEnv(t)
	tables := readmodel.NewOrderTables(e.s, 1)
	for _, forget := range []bool{false, true} {
		o, envs := orderWithHistory(e)
		h, other := app.NewOrdersHandler(tables, e.store), app.NewOrdersHandler(tables, e.store)
		project(t, e, h, envs[:2]...)      // h keeps v2
		project(t, e, other, envs[2:5]...) // another member writes v3 to v5
		if forget {
			h.ForgetRows()
		}
		res, err := h.Project(e.ctx(), envs[5])
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{false: 3, true: 0}[forget]; res.Healed != want {
			t.Errorf("forget=%v: %d events healed, want %d (from the kept v2: 3; from the row read: 0)", forget, res.Healed, want)
		}
		assertOnlyListedUnder(t, e, tables, o.AggregateID(), 6, order.StatusShipped)
	}
}

// TestInterruptedOrderWriteLeavesNoOlderDetailsUnderItsNewStatus: an order write copies the
// customer's details from the order's row as the handler last saw it, and checks the contact
// only after the write. A handler that kept order v1 while the customer's e-mail changed (the
// fan-out patched the order's rows) writes v2 (CONFIRMED) with the old e-mail under its new
// status, and stops before the check (a crash, a timeout). The redelivered v2 must put the new
// e-mail there: the order's other rows show it already, so comparing with them is not enough.
func TestInterruptedOrderWriteLeavesNoOlderDetailsUnderItsNewStatus(t *testing.T) {
	e := newEnv(t)
	c, custEvents := e.newCustomer("Ada", "Lovelace", "old@example.com")
	o, envs := e.newOrder(c.AggregateID(), 1)
	envs = append(envs, e.append(o, order.OrderConfirmed{})...)
	tables := readmodel.NewOrderTables(e.s, 1)
	h := app.NewOrdersHandler(tables, e.store)
	project(t, e, h, custEvents...)
	project(t, e, h, envs[0])
	kept, err := tables.Get(e.ctx(), o.AggregateID()) // the row h keeps, old e-mail
	if err != nil || kept.CustomerEmail != "old@example.com" {
		t.Fatalf("order v1: %+v %v", kept, err)
	}
	changed := e.append(c, customer.CustomerEmailChanged{OldEmail: "old@example.com", NewEmail: "new@example.com"})
	project(t, e, app.NewOrdersHandler(tables, e.store), changed...) // contact and fan-out

	staleWrite(t, e, tables, kept, envs[1])                       // h's write of v2 from its kept row; no check after it
	project(t, e, app.NewOrdersHandler(tables, e.store), envs[1]) // redelivered
	p, err := tables.ListByStatus(e.ctx(), order.StatusConfirmed, 50, "")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range p.Orders {
		if r.State.AggregateID() == o.AggregateID() {
			found = true
			if r.CustomerEmail != "new@example.com" {
				t.Errorf("orders_by_status CONFIRMED shows %q, want the customer's e-mail new@example.com", r.CustomerEmail)
			}
		}
	}
	if !found {
		t.Fatal("order not listed as CONFIRMED")
	}
}
