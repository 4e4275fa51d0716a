package readmodel_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

func newOrder(t testing.TB, id, customerID string, status order.Status, created time.Time, version int64) readmodel.Order {
	t.Helper()
	o := order.New(id)
	o.CustomerID = customerID
	o.Status = status
	o.Items = []order.Item{{ProductID: gocql.TimeUUID().String(), Quantity: 2, UnitPriceCents: 150}}
	o.TotalCents = 300
	o.CreatedAt = created.UTC().Truncate(time.Millisecond)
	o.UpdatedAt = o.CreatedAt.Add(time.Duration(version) * time.Second)
	o.SetVersion(version)
	return readmodel.Order{State: o, CustomerEmail: "ada@example.com", CustomerName: "Ada Lovelace", CustomerVersion: 1}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func TestOrderRowsStatusMoveAndLists(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	tb := readmodel.NewOrderTables(s, 1)
	cust := gocql.TimeUUID().String()
	base := time.Now().Add(-time.Hour)

	// 23 orders of one customer, created one second apart; every third one confirmed.
	var ids []string
	for i := range 23 {
		id := gocql.TimeUUID().String()
		ids = append(ids, id)
		o := newOrder(t, id, cust, order.StatusCreated, base.Add(time.Duration(i)*time.Second), 1)
		if err := tb.Save(ctx(t), nil, o); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			next := newOrder(t, id, cust, order.StatusConfirmed, o.State.CreatedAt, 2)
			if err := tb.Save(ctx(t), &o, next); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := tb.Get(ctx(t), ids[3])
	if err != nil {
		t.Fatal(err)
	}
	if got.State.Status != order.StatusConfirmed || got.State.Version() != 2 || got.CustomerName != "Ada Lovelace" ||
		len(got.State.Items) != 1 || got.State.Items[0].Quantity != 2 {
		t.Fatalf("got %+v %+v", got, got.State)
	}
	if _, err := tb.Get(ctx(t), gocql.TimeUUID().String()); !errors.Is(err, es.ErrNotFound) {
		t.Fatalf("missing order: %v", err)
	}

	// By customer: newest first, pages of 5.
	var seen []string
	tok := ""
	for pages := 0; ; pages++ {
		page, err := tb.ListByCustomer(ctx(t), cust, 5, tok)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Orders {
			seen = append(seen, o.State.AggregateID())
		}
		if page.NextPageToken == "" {
			break
		}
		if pages > 10 {
			t.Fatal("too many pages")
		}
		tok = page.NextPageToken
	}
	want := make([]string, len(ids))
	for i, id := range ids {
		want[len(ids)-1-i] = id
	}
	if !reflect.DeepEqual(seen, want) {
		t.Fatalf("by customer:\n got %v\nwant %v", seen, want)
	}

	// By status: CONFIRMED holds ids 0,3,…,21 (8), CREATED the other 15, newest first across shards.
	for _, tc := range []struct {
		status order.Status
		keep   func(i int) bool
	}{
		{order.StatusConfirmed, func(i int) bool { return i%3 == 0 }},
		{order.StatusCreated, func(i int) bool { return i%3 != 0 }},
	} {
		var want []string
		for i := len(ids) - 1; i >= 0; i-- {
			if tc.keep(i) {
				want = append(want, ids[i])
			}
		}
		var got []string
		tok := ""
		for {
			page, err := tb.ListByStatus(ctx(t), tc.status, 4, tok)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Orders) > 4 {
				t.Fatalf("page of %d", len(page.Orders))
			}
			for _, o := range page.Orders {
				if o.State.Status != tc.status {
					t.Fatalf("%s listed under %s", o.State.Status, tc.status)
				}
				got = append(got, o.State.AggregateID())
			}
			if page.NextPageToken == "" {
				break
			}
			tok = page.NextPageToken
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("by status %s:\n got %v\nwant %v", tc.status, got, want)
		}
	}

	// Tokens are bound to their list.
	page, _ := tb.ListByCustomer(ctx(t), cust, 5, "")
	if _, err := tb.ListByCustomer(ctx(t), gocql.TimeUUID().String(), 5, page.NextPageToken); !errors.Is(err, es.ErrInvalidArgument) {
		t.Fatalf("foreign token: %v", err)
	}
	if _, err := tb.ListByStatus(ctx(t), order.StatusCreated, 5, "garbage!"); !errors.Is(err, es.ErrInvalidArgument) {
		t.Fatalf("garbage token: %v", err)
	}
}

func TestSetCustomerOnMovedOrderLeavesNoVisibleRow(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	tb := readmodel.NewOrderTables(s, 1)
	cust, id := gocql.TimeUUID().String(), gocql.TimeUUID().String()
	created := newOrder(t, id, cust, order.StatusCreated, time.Now(), 1)
	if err := tb.Save(ctx(t), nil, created); err != nil {
		t.Fatal(err)
	}
	confirmed := newOrder(t, id, cust, order.StatusConfirmed, created.State.CreatedAt, 2)
	if err := tb.Save(ctx(t), &created, confirmed); err != nil {
		t.Fatal(err)
	}
	// A customer update that read the order while it was CREATED.
	c := readmodel.Contact{CustomerID: cust, Email: "new@example.com", Name: "Ada King", Version: 2}
	if err := tb.SetCustomer(ctx(t), created, c); err != nil {
		t.Fatal(err)
	}
	page, err := tb.ListByStatus(ctx(t), order.StatusCreated, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Orders) != 0 {
		t.Fatalf("CREATED lists %d orders", len(page.Orders))
	}
	got, err := tb.Get(ctx(t), id)
	if err != nil || got.CustomerEmail != "new@example.com" || got.CustomerVersion != 2 {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestCustomerRoundTrip(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	tb := readmodel.NewCustomerTables(s, 1)
	c := customer.New(gocql.TimeUUID().String())
	c.Email, c.FirstName, c.LastName, c.Phone = "ada@example.com", "Ada", "Lovelace", "+441234567890"
	c.Addresses = []customer.Address{{AddressID: gocql.TimeUUID().String(), Label: "home", Line1: "1 St", City: "London", PostalCode: "N1", CountryCode: "GB", IsDefault: true}}
	c.PaymentMethods = []customer.PaymentMethod{{PaymentMethodID: gocql.TimeUUID().String(), Kind: customer.KindCard, Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: 2030, IsDefault: true}}
	c.Tier, c.Status = customer.TierGold, customer.StatusSuspended
	c.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	c.UpdatedAt = c.CreatedAt
	c.SetVersion(7)
	if err := tb.Save(ctx(t), c); err != nil {
		t.Fatal(err)
	}
	got, err := tb.Get(ctx(t), c.AggregateID())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("got %+v\nwant %+v", got, c)
	}
}

func TestRebuildVersionsAndStoreSwitch(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	now := time.Now()
	st := readmodel.NewStore(s, readmodel.Options{VersionTTL: time.Millisecond})

	v, err := readmodel.LoadVersions(ctx(t), s, readmodel.ProjectionOrders)
	if err != nil || v.Active != 1 || v.Building != 0 {
		t.Fatalf("initial versions %+v, %v", v, err)
	}
	nv, resumed, err := readmodel.BeginRebuild(ctx(t), s, readmodel.ProjectionOrders)
	if err != nil || nv != 2 || resumed {
		t.Fatalf("begin: %d %v %v", nv, resumed, err)
	}
	if again, resumed, err := readmodel.BeginRebuild(ctx(t), s, readmodel.ProjectionOrders); err != nil || again != 2 || !resumed {
		t.Fatalf("resume: %d %v %v", again, resumed, err)
	}
	v, _ = readmodel.LoadVersions(ctx(t), s, readmodel.ProjectionOrders)
	if got := v.Writable(now, time.Minute); !reflect.DeepEqual(got, []int{1, 2}) {
		t.Fatalf("writable while building: %v", got)
	}

	cust := gocql.TimeUUID().String()
	id := gocql.TimeUUID().String()
	o := newOrder(t, id, cust, order.StatusCreated, now, 1)
	if err := readmodel.NewOrderTables(s, 2).Save(ctx(t), nil, o); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetOrder(ctx(t), id); !errors.Is(err, es.ErrNotFound) {
		t.Fatalf("v1 should not have the order yet: %v", err)
	}
	if err := readmodel.Switch(ctx(t), s, readmodel.ProjectionOrders, 2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if got, err := st.GetOrder(ctx(t), id); err != nil || got.State.Version() != 1 {
		t.Fatalf("after switch: %+v %v", got, err)
	}
	v, _ = readmodel.LoadVersions(ctx(t), s, readmodel.ProjectionOrders)
	if v.Active != 2 || v.Previous != 1 || v.Building != 0 || v.Latest != 2 {
		t.Fatalf("after switch %+v", v)
	}
	if got := v.Writable(time.Now(), time.Minute); !reflect.DeepEqual(got, []int{1, 2}) {
		t.Fatalf("writable in grace: %v", got)
	}
	if got := v.Writable(time.Now().Add(2*time.Minute), time.Minute); !reflect.DeepEqual(got, []int{2}) {
		t.Fatalf("writable after grace: %v", got)
	}
	if err := readmodel.Switch(ctx(t), s, readmodel.ProjectionOrders, 2); !errors.Is(err, readmodel.ErrRebuildConflict) {
		t.Fatalf("second switch: %v", err)
	}
	// The next rebuild gets version 3.
	if nv, _, err := readmodel.BeginRebuild(ctx(t), s, readmodel.ProjectionOrders); err != nil || nv != 3 {
		t.Fatalf("next rebuild: %d %v", nv, err)
	}
	if err := readmodel.AbortRebuild(ctx(t), s, readmodel.ProjectionOrders, 3); err != nil {
		t.Fatal(err)
	}
}

// TestSwitchBackAndDropVersion: the previous version is made active again only while it is
// still written, and a version's tables are dropped only when nothing uses them.
func TestSwitchBackAndDropVersion(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	p := readmodel.ProjectionOrders
	if _, err := readmodel.SwitchBack(ctx(t), s, p, time.Minute); !errors.Is(err, readmodel.ErrUnsafe) {
		t.Fatalf("switch back with no previous version: %v", err)
	}
	for range 2 { // versions 2 and 3, 3 active, 2 previous
		nv, _, err := readmodel.BeginRebuild(ctx(t), s, p)
		if err != nil {
			t.Fatal(err)
		}
		if err := readmodel.Switch(ctx(t), s, p, nv); err != nil {
			t.Fatal(err)
		}
	}
	id := gocql.TimeUUID().String()
	if err := readmodel.NewOrderTables(s, 2).Save(ctx(t), nil, newOrder(t, id, gocql.TimeUUID().String(), order.StatusCreated, time.Now(), 1)); err != nil {
		t.Fatal(err)
	}

	// Past the time the previous version is written: refused.
	if _, err := readmodel.SwitchBack(ctx(t), s, p, time.Nanosecond); !errors.Is(err, readmodel.ErrUnsafe) {
		t.Fatalf("switch back to a retired version: %v", err)
	}
	v, err := readmodel.SwitchBack(ctx(t), s, p, time.Minute)
	if err != nil || v.Active != 2 || v.Previous != 3 {
		t.Fatalf("switch back: %+v %v", v, err)
	}
	if got, err := readmodel.NewStore(s, readmodel.Options{}).GetOrder(ctx(t), id); err != nil || got.State.Version() != 1 {
		t.Fatalf("readers after the switch back: %+v %v", got, err)
	}

	for _, tc := range []struct {
		version int
		want    error
	}{
		{0, es.ErrNotFound}, {4, es.ErrNotFound}, // never allocated
		{1, readmodel.ErrUnsafe}, // the schema's tables
		{2, readmodel.ErrUnsafe}, // active
		{3, readmodel.ErrUnsafe}, // previous, still written
	} {
		if _, err := readmodel.DropVersion(ctx(t), s, p, tc.version, time.Minute); !errors.Is(err, tc.want) {
			t.Fatalf("drop v%d: %v, want %v", tc.version, err, tc.want)
		}
	}
	nv, _, err := readmodel.BeginRebuild(ctx(t), s, p)
	if err != nil || nv != 4 {
		t.Fatalf("rebuild: %d %v", nv, err)
	}
	if _, err := readmodel.DropVersion(ctx(t), s, p, 4, time.Minute); !errors.Is(err, readmodel.ErrUnsafe) {
		t.Fatalf("drop the version being built: %v", err)
	}
	if _, err := readmodel.SwitchBack(ctx(t), s, p, time.Minute); !errors.Is(err, readmodel.ErrUnsafe) {
		t.Fatalf("switch back during a rebuild: %v", err)
	}
	if err := readmodel.AbortRebuild(ctx(t), s, p, 4); err != nil {
		t.Fatal(err)
	}
	for _, version := range []int{4, 3} { // aborted; previous once retired
		dropped, err := readmodel.DropVersion(ctx(t), s, p, version, time.Nanosecond)
		if err != nil || len(dropped) != 4 || dropped[0] != fmt.Sprintf("order_read_model_v%d", version) {
			t.Fatalf("drop v%d: %v %v", version, dropped, err)
		}
		if err := readmodel.NewOrderTables(s, version).Save(ctx(t), nil, newOrder(t, id, gocql.TimeUUID().String(), order.StatusCreated, time.Now(), 1)); err == nil {
			t.Fatalf("v%d still written after the drop", version)
		}
	}
	v, err = readmodel.LoadVersions(ctx(t), s, p)
	if err != nil || v.Active != 2 || v.Previous != 0 || v.Latest != 4 {
		t.Fatalf("versions after the drops: %+v %v", v, err)
	}
}
