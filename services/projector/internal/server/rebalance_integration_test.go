package server_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

// Sizes of the rebalance test: bounded in count and time.
const (
	churnCustomers = 8
	churnOrders    = 150
	churnRounds    = 10                     // events published per aggregate at most, one round at a time
	churnRound     = 700 * time.Millisecond // between publishing rounds
	churnEvery     = 2 * time.Second        // a member joins or leaves
	churnMembers   = 3                      // members at most
)

// TestRebalancesUnderLoadLeaveReadModelsEqualToReplay is deliver 3 of issue 11: members of one
// consumer group join and leave every two seconds while events keep arriving, each rebalance
// moving partitions between members in the middle of their work. Afterwards every read model
// equals the state replayed from the event store, and every order is listed under its status
// and under no other.
func TestRebalancesUnderLoadLeaveReadModelsEqualToReplay(t *testing.T) {
	e := newEnv(t)
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))

	// Histories, stored in the event store first (the relay publishes only what is stored).
	customers := make([]*customer.Customer, churnCustomers)
	var streams [][]es.Envelope
	for i := range customers {
		c, envs := e.newCustomer("First", fmt.Sprintf("Last%d", i), fmt.Sprintf("c%d@example.com", i))
		for k := range rng.IntN(4) {
			if k%2 == 0 {
				envs = append(envs, e.append(c, customer.CustomerProfileUpdated{FirstName: "First", LastName: fmt.Sprintf("Last%d-%d", i, k)})...)
			} else {
				envs = append(envs, e.append(c, customer.CustomerEmailChanged{OldEmail: c.Email, NewEmail: customer.Email(fmt.Sprintf("c%d-%d@example.com", i, k))})...)
			}
		}
		customers[i] = c
		streams = append(streams, envs)
	}
	orders := make([]*order.Order, churnOrders)
	for i := range orders {
		o, envs := e.newOrder(customers[i%churnCustomers].AggregateID(), 1+rng.IntN(3))
		for range rng.IntN(3) {
			items := []order.Item{{ProductID: gocql.TimeUUID().String(), Quantity: int32(1 + rng.IntN(9)), UnitPriceCents: 100}}
			total, _ := order.Total(items)
			envs = append(envs, e.append(o, order.OrderItemsUpdated{Items: items, TotalCents: total})...)
		}
		envs = append(envs, lifecycle(e, o, rng)...)
		orders[i] = o
		streams = append(streams, envs)
	}

	// Members join and leave while the rounds are published.
	ctx, stopChurn := context.WithCancel(e.ctx())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		churn(ctx, e, rng)
	}()
	for round := range churnRounds {
		var batch []es.Envelope
		for _, s := range streams {
			if round < len(s) {
				batch = append(batch, s[round])
			}
		}
		if len(batch) > 0 {
			e.publish(batch...)
		}
		time.Sleep(churnRound)
	}
	time.Sleep(2 * churnEvery)
	stopChurn()
	wg.Wait()
	_, stop := e.runSupervisor() // one member finishes the work
	defer stop()

	tables := readmodel.NewOrderTables(e.s, 1)
	eventually(t, 90*time.Second, func() error { return equalToReplay(e, tables, 1, orders, customers) })
	assertListedOnceUnderStatus(t, e, tables, orders)
	t.Logf("redelivered duplicates skipped: %v, gaps healed: %v (orders projection)",
		metric(e.deps.Metrics.Duplicates, readmodel.ProjectionOrders), metric(e.deps.Metrics.GapsHealed, readmodel.ProjectionOrders))
}

// lifecycle appends a random path through the order statuses.
func lifecycle(e *env, o *order.Order, rng *rand.Rand) []es.Envelope {
	var envs []es.Envelope
	switch rng.IntN(5) {
	case 0: // stays CREATED
	case 1:
		envs = append(envs, e.append(o, order.OrderCancelled{Reason: "changed mind"})...)
	case 2:
		envs = append(envs, e.append(o, order.OrderConfirmed{})...)
		envs = append(envs, e.append(o, order.OrderCancelled{Reason: "out of stock"})...)
	case 3:
		envs = append(envs, e.append(o, order.OrderConfirmed{})...)
		envs = append(envs, e.append(o, order.OrderShipped{TrackingNumber: "TN", Carrier: "UPS"})...)
	default:
		envs = append(envs, e.append(o, order.OrderConfirmed{})...)
		envs = append(envs, e.append(o, order.OrderShipped{TrackingNumber: "TN", Carrier: "DHL"})...)
		envs = append(envs, e.append(o, order.OrderDelivered{Signature: "sig"})...)
	}
	return envs
}

// churn keeps between one and churnMembers members in the group, starting or stopping one every
// churnEvery, until ctx ends; then it stops them all.
func churn(ctx context.Context, e *env, rng *rand.Rand) {
	var members []func()
	defer func() {
		for _, stop := range members {
			stop()
		}
	}()
	t := time.NewTicker(churnEvery)
	defer t.Stop()
	for {
		if len(members) == 0 || (len(members) < churnMembers && rng.IntN(2) == 0) {
			_, stop := e.runSupervisor()
			members = append(members, stop)
		} else {
			i := rng.IntN(len(members))
			members[i]()
			members = append(members[:i], members[i+1:]...)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// equalToReplay compares every order row (all three tables through the reads) and customer row
// (of version customersVersion of the customers projection) with the aggregates the histories
// were replayed into.
func equalToReplay(e *env, tables readmodel.OrderTables, customersVersion int, orders []*order.Order, customers []*customer.Customer) error {
	byID := map[string]*customer.Customer{}
	custs := readmodel.NewCustomerTables(e.s, customersVersion)
	for _, c := range customers {
		byID[c.AggregateID()] = c
		got, err := custs.Get(e.ctx(), c.AggregateID())
		if err != nil {
			return err
		}
		if got.Version() != c.Version() || got.Email != c.Email || got.LastName != c.LastName {
			return fmt.Errorf("customer %s: v%d %s %s, want v%d %s %s", c.AggregateID(), got.Version(), got.Email, got.LastName, c.Version(), c.Email, c.LastName)
		}
	}
	for _, want := range orders {
		got, err := tables.Get(e.ctx(), want.AggregateID())
		if err != nil {
			return err
		}
		if err := sameOrder(got, want, byID[want.CustomerID]); err != nil {
			return fmt.Errorf("order_read_model: %w", err)
		}
	}
	for _, c := range customers {
		n := 0
		err := tables.CustomerOrders(e.ctx(), c.AggregateID(), 100, func(got readmodel.Order) error {
			n++
			for _, want := range orders {
				if want.AggregateID() == got.State.AggregateID() {
					return sameOrder(got, want, c)
				}
			}
			return fmt.Errorf("orders_by_customer: unknown order %s", got.State.AggregateID())
		})
		if err != nil {
			return fmt.Errorf("orders_by_customer: %w", err)
		}
		if want := countOf(orders, c.AggregateID()); n != want {
			return fmt.Errorf("orders_by_customer %s: %d rows, want %d", c.AggregateID(), n, want)
		}
	}
	return nil
}

func countOf(orders []*order.Order, customerID string) int {
	n := 0
	for _, o := range orders {
		if o.CustomerID == customerID {
			n++
		}
	}
	return n
}

func sameOrder(got readmodel.Order, want *order.Order, c *customer.Customer) error {
	g := got.State
	if g.Version() != want.Version() || g.Status != want.Status || g.TotalCents != want.TotalCents ||
		!reflect.DeepEqual(g.Items, want.Items) || g.TrackingNumber != want.TrackingNumber || g.Carrier != want.Carrier ||
		g.CancelReason != want.CancelReason || g.DeliverySignature != want.DeliverySignature ||
		!g.CreatedAt.Equal(want.CreatedAt) || !g.UpdatedAt.Equal(want.UpdatedAt) {
		return fmt.Errorf("order %s: v%d %s, want v%d %s (%+v vs %+v)", want.AggregateID(), g.Version(), g.Status, want.Version(), want.Status, g, want)
	}
	if name := readmodel.FullName(c.FirstName, c.LastName); got.CustomerEmail != c.Email.String() || got.CustomerName != name {
		return fmt.Errorf("order %s: customer %q %q, want %q %q", want.AggregateID(), got.CustomerEmail, got.CustomerName, c.Email, name)
	}
	return nil
}

// assertListedOnceUnderStatus lists every status and checks that each order appears exactly
// once, under its status, with its current version.
func assertListedOnceUnderStatus(t *testing.T, e *env, tables readmodel.OrderTables, orders []*order.Order) {
	t.Helper()
	want := map[string]*order.Order{}
	for _, o := range orders {
		want[o.AggregateID()] = o
	}
	seen := map[string][]order.Status{}
	for st := order.StatusCreated; st <= order.StatusCancelled; st++ {
		token := ""
		for {
			p, err := tables.ListByStatus(e.ctx(), st, 25, token)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range p.Orders {
				id := o.State.AggregateID()
				seen[id] = append(seen[id], st)
				if w := want[id]; w == nil || w.Status != st || o.State.Version() != w.Version() {
					t.Errorf("orders_by_status %s lists %s at v%d", st, id, o.State.Version())
				}
			}
			if token = p.NextPageToken; token == "" {
				break
			}
		}
	}
	for id, o := range want {
		if got := seen[id]; len(got) != 1 {
			t.Errorf("order %s (%s) listed under %v", id, o.Status, got)
		}
	}
}
