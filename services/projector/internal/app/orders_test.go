package app

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

// memOrders is an in-memory OrderRows that counts the contact reads.
type memOrders struct {
	orders       map[string]readmodel.Order
	contacts     map[string]readmodel.Contact
	contactReads int
	setCustomer  int
}

func newMemOrders() *memOrders {
	return &memOrders{orders: map[string]readmodel.Order{}, contacts: map[string]readmodel.Contact{}}
}

func (m *memOrders) Get(_ context.Context, id string) (readmodel.Order, error) {
	o, ok := m.orders[id]
	if !ok {
		return readmodel.Order{}, fmt.Errorf("order %s: %w", id, es.ErrNotFound)
	}
	return o, nil
}

func (m *memOrders) Save(_ context.Context, _ *readmodel.Order, next readmodel.Order, _ ...order.Status) error {
	m.orders[next.State.AggregateID()] = next
	return nil
}

func (m *memOrders) SetCustomer(_ context.Context, o readmodel.Order, c readmodel.Contact) error {
	m.setCustomer++
	row := m.orders[o.State.AggregateID()]
	row.CustomerEmail, row.CustomerName, row.CustomerVersion = c.Email, c.Name, c.Version
	m.orders[o.State.AggregateID()] = row
	return nil
}

func (m *memOrders) Contact(_ context.Context, id string) (readmodel.Contact, error) {
	m.contactReads++
	c, ok := m.contacts[id]
	if !ok {
		return readmodel.Contact{}, fmt.Errorf("contact %s: %w", id, es.ErrNotFound)
	}
	return c, nil
}

func (m *memOrders) SaveContact(_ context.Context, c readmodel.Contact) error {
	m.contacts[c.CustomerID] = c
	return nil
}

func (m *memOrders) CustomerOrders(context.Context, string, int, func(readmodel.Order) error) error {
	return nil
}

// created returns the OrderCreated envelope of a new order of the customer.
func created(t *testing.T, customerID string) es.Envelope {
	t.Helper()
	o := order.New(ids.New())
	items := []order.Item{{ProductID: ids.New(), Quantity: 1, UnitPriceCents: 100}}
	ev := order.OrderCreated{OrderID: o.AggregateID(), CustomerID: customerID, Items: items, TotalCents: 100}
	return es.NewEnvelopes(o, []es.Event{ev}, es.Metadata{}, time.Now().UTC(), ids.New)[0]
}

// A new order copies the customer details the handler last saw instead of reading them before
// its write, and the re-read after the write, never skipped, patches details that were out of
// date.
func TestNewOrderCopiesKnownDetailsAndTheReReadPatchesThem(t *testing.T) {
	ctx := context.Background()
	tables, cust, h := withContact()

	first := created(t, cust)
	if _, err := h.Project(ctx, first); err != nil {
		t.Fatal(err)
	}
	if tables.contactReads != 2 { // unknown customer: read before the write, re-read after it
		t.Fatalf("first order: %d contact reads, want 2", tables.contactReads)
	}
	second := created(t, cust)
	if _, err := h.Project(ctx, second); err != nil {
		t.Fatal(err)
	}
	if tables.contactReads != 3 { // known customer: the re-read after the write only
		t.Fatalf("second order: %d contact reads in all, want 3", tables.contactReads)
	}
	if got := tables.orders[second.AggregateID].CustomerEmail; got != "a@example.com" {
		t.Fatalf("second order written with email %q", got)
	}

	// Another writer changes the contact row: the details the handler knows are out of date.
	tables.contacts[cust] = readmodel.Contact{CustomerID: cust, Email: "b@example.com", Name: "B", Version: 2}
	third := created(t, cust)
	res, then, err := h.ProjectThen(ctx, third)
	if err != nil || then == nil {
		t.Fatalf("ProjectThen: %+v, then %v, %v", res, then != nil, err)
	}
	if _, kept := h.rows.Get(third.AggregateID); kept {
		t.Fatal("the row is kept before its customer details were checked")
	}
	if err := then(ctx); err != nil {
		t.Fatal(err)
	}
	row := tables.orders[third.AggregateID]
	if row.CustomerEmail != "b@example.com" || row.CustomerVersion != 2 || tables.setCustomer != 1 {
		t.Fatalf("third order: %q v%d after %d patches, want b@example.com v2 after 1", row.CustomerEmail, row.CustomerVersion, tables.setCustomer)
	}
	if kept, ok := h.rows.Get(third.AggregateID); !ok || kept.CustomerEmail != "b@example.com" {
		t.Fatalf("kept row %+v (%v), want the patched details", kept, ok)
	}
}

// A customer event's contact write is what the handler knows of the customer from then on.
func TestRememberContactKeepsTheNewestVersion(t *testing.T) {
	h := NewOrdersHandler(newMemOrders(), &sliceSource{})
	h.rememberContact("c", knownContact{c: readmodel.Contact{Email: "new", Version: 3}, found: true})
	h.rememberContact("c", knownContact{c: readmodel.Contact{Email: "old", Version: 2}, found: true})
	h.rememberContact("c", knownContact{})
	c, err := h.knownContact(context.Background(), "c")
	if err != nil || c.Email != "new" {
		t.Fatalf("known contact %+v, %v; want the version 3 one", c, err)
	}
}

// Customer details are personal data: the handler forgets them contactTTL (30 s, the data-key
// cache's TTL, docs/privacy.md) after it stored them; an older entry is never used, and it
// leaves memory.
func TestKnownContactIsForgottenAfterTheTTL(t *testing.T) {
	ctx := context.Background()
	tables, cust, h := withContact()
	now := time.Now()
	h.contacts.now = func() time.Time { return now }
	if _, err := h.Project(ctx, created(t, cust)); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.contacts.get(cust); !ok {
		t.Fatal("the customer's details are not remembered")
	}
	now = now.Add(contactTTL - time.Second)
	if _, ok := h.contacts.get(cust); !ok {
		t.Fatal("the customer's details forgotten before the TTL")
	}
	now = now.Add(time.Second) // contactTTL after they were stored
	if k, ok := h.contacts.get(cust); ok {
		t.Fatalf("details %+v used contactTTL after they were stored", k)
	}
	if n := h.contacts.lru.Len(); n != 0 {
		t.Fatalf("%d expired entries still in memory", n)
	}
	reads := tables.contactReads
	if _, err := h.Project(ctx, created(t, cust)); err != nil {
		t.Fatal(err)
	}
	if tables.contactReads != reads+2 { // forgotten: read before the write again
		t.Fatalf("%d contact reads for an order of a forgotten customer, want 2", tables.contactReads-reads)
	}
}

// The timer sweeps expired details out of memory even when nothing reads the cache, and stops
// once it is empty.
func TestContactCacheSweepsWithoutAccess(t *testing.T) {
	c := newContactCache(10)
	now := time.Now()
	c.now = func() time.Time { return now }
	c.put("c", knownContact{c: readmodel.Contact{Email: "a@example.com", Version: 1}, found: true})
	now = now.Add(contactTTL)
	c.sweep()
	c.mu.Lock()
	n, timer := c.lru.Len(), c.timer
	c.mu.Unlock()
	if n != 0 || timer != nil {
		t.Fatalf("after the sweep: %d entries, timer set %v; want 0, false", n, timer != nil)
	}
}

// Many goroutines storing versions of one customer's details at once leave the newest.
func TestRememberContactConcurrentlyKeepsTheNewest(t *testing.T) {
	h := NewOrdersHandler(newMemOrders(), &sliceSource{})
	var wg sync.WaitGroup
	for v := int64(1); v <= 50; v++ {
		wg.Go(func() {
			h.rememberContact("c", knownContact{c: readmodel.Contact{Email: fmt.Sprint(v), Version: v}, found: true})
		})
	}
	wg.Wait()
	if k, ok := h.contacts.get("c"); !ok || k.c.Version != 50 {
		t.Fatalf("kept %+v (%v), want version 50", k, ok)
	}
}

// The re-read after an order write patches the row when the contact's version is newer than
// the row's customer version, even with the same email and name.
func TestReReadPatchesANewerContactVersion(t *testing.T) {
	ctx := context.Background()
	tables, cust, h := withContact()
	first := created(t, cust)
	if _, err := h.Project(ctx, first); err != nil {
		t.Fatal(err)
	}
	// The contact moves to version 2 with the same details (another field changed).
	tables.contacts[cust] = readmodel.Contact{CustomerID: cust, Email: "a@example.com", Name: "A", Version: 2}
	second := created(t, cust)
	if _, err := h.Project(ctx, second); err != nil {
		t.Fatal(err)
	}
	if row := tables.orders[second.AggregateID]; row.CustomerVersion != 2 || tables.setCustomer != 1 {
		t.Fatalf("order at customer version %d after %d patches, want 2 after 1", row.CustomerVersion, tables.setCustomer)
	}
}

// withContact returns in-memory tables holding one customer's contact (a@example.com, version 1)
// and an orders handler over them.
func withContact() (*memOrders, string, *OrdersHandler) {
	tables := newMemOrders()
	cust := ids.New()
	tables.contacts[cust] = readmodel.Contact{CustomerID: cust, Email: "a@example.com", Name: "A", Version: 1}
	return tables, cust, NewOrdersHandler(tables, &sliceSource{})
}
