package server_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/services/projector/internal/app"
)

// history stores (and does not publish) customers with orders on random paths through the
// statuses and an email change each: the event store holds it, the topics do not.
func (e *env) history(rng *rand.Rand, nCustomers, ordersEach int) ([]*customer.Customer, []*order.Order, int) {
	var customers []*customer.Customer
	var orders []*order.Order
	events := 0
	for i := range nCustomers {
		c, evs := e.newCustomer("Ada", fmt.Sprintf("Lovelace%d", i), fmt.Sprintf("ada%d@example.com", i))
		customers = append(customers, c)
		events += len(evs)
		for j := range ordersEach {
			o, evs := e.newOrder(c.AggregateID(), j%3+1)
			orders = append(orders, o)
			events += len(evs) + len(lifecycle(e, o, rng))
		}
		events += len(e.append(c, customer.CustomerEmailChanged{OldEmail: c.Email, NewEmail: customer.Email(fmt.Sprintf("ada%d@example.org", i))}))
	}
	return customers, orders, events
}

// TestRebuildFromEventStoreWithEmptyTopics (recovery issue, item 2): the whole history is in
// the event store only, the topics are empty (as after a topic was deleted and created again).
// A rebuild from the event store, with the live projector running, produces read models equal
// to the replayed store; commands issued while it walks (events on aggregates already walked and
// not yet walked, new orders, a customer's email change, published to the topics as the relay
// would) are all in the rebuilt version after the switch.
func TestRebuildFromEventStoreWithEmptyTopics(t *testing.T) {
	e := newEnv(t)
	rng := rand.New(rand.NewPCG(11, 2))
	customers, orders, stored := e.history(rng, 6, 8)
	if _, err := readmodel.NewOrderTables(e.s, 1).Get(e.ctx(), orders[0].AggregateID()); !errors.Is(err, es.ErrNotFound) {
		t.Fatalf("the topics hold the history: %v", err)
	}
	_, stop := e.runSupervisor() // the live projection: its topics are empty
	defer stop()

	var progress []app.RebuildProgress
	during := 0
	issue := func() { // commands while the walk runs, delivered through the topics only
		for _, o := range orders {
			if o.Status == order.StatusCreated {
				e.publish(e.append(o, order.OrderConfirmed{})...)
				during++
			}
		}
		for i := range 3 {
			o, evs := e.newOrder(customers[i].AggregateID(), 2)
			evs = append(evs, e.append(o, order.OrderConfirmed{})...)
			e.publish(evs...)
			orders = append(orders, o)
			during += len(evs)
		}
		c := customers[len(customers)-1]
		evs := e.append(c, customer.CustomerEmailChanged{OldEmail: c.Email, NewEmail: "moved@example.net"})
		e.publish(evs...)
		during += len(evs)
	}
	for _, p := range []string{readmodel.ProjectionOrders, readmodel.ProjectionCustomers} {
		v, err := app.Rebuild(e.ctx(), e.cfg, e.deps.Deps(), p, app.RebuildOptions{
			Source: app.SourceEventStore, PageSize: 5, Workers: 4,
			Poll: 200 * time.Millisecond, Linger: 200 * time.Millisecond,
			Progress: func(rp app.RebuildProgress) {
				progress = append(progress, rp)
				if p == readmodel.ProjectionOrders && rp.Phase == app.PhaseWalking && rp.Aggregates >= 10 && during == 0 {
					issue()
				}
			},
		})
		if err != nil || v != 2 {
			t.Fatalf("rebuild %s from the event store: version %d, %v", p, v, err)
		}
	}
	if during == 0 {
		t.Fatal("no command was issued during the walk")
	}
	for _, p := range readmodel.Projections() {
		v, err := readmodel.LoadVersions(e.ctx(), e.s, p)
		if err != nil || v.Active != 2 || v.Previous != 1 || v.Building != 0 {
			t.Fatalf("%s versions %+v %v", p, v, err)
		}
	}
	// Right after the switch, without waiting: every stored event is in version 2.
	tables := readmodel.NewOrderTables(e.s, 2)
	if err := equalToReplay(e, tables, 2, orders, customers); err != nil {
		t.Fatal(err)
	}
	assertListedOnceUnderStatus(t, e, tables, orders)

	var walked []app.RebuildProgress
	for _, rp := range progress {
		if rp.Projection == readmodel.ProjectionOrders && rp.Phase == app.PhaseWalking {
			walked = append(walked, rp)
		}
	}
	if len(walked) < 5 {
		t.Fatalf("%d walking reports for orders, want one per page of 5 aggregates: %+v", len(walked), walked)
	}
	for i := 1; i < len(walked); i++ {
		if walked[i].Fraction < walked[i-1].Fraction || walked[i].Events < walked[i-1].Events {
			t.Fatalf("progress goes back: %+v then %+v", walked[i-1], walked[i])
		}
	}
	end := walked[len(walked)-1]
	if end.Fraction != 1 || end.Aggregates < int64(len(customers)+48) || end.Events < int64(stored) || end.Skipped != 0 || end.Rate <= 0 {
		t.Fatalf("walk ended with %+v, want every one of the %d aggregates and %d events stored before it", end, len(customers)+48, stored)
	}
	if last := progress[len(progress)-1]; !last.Switched || last.Phase != app.PhaseSwitched || last.Source != app.SourceEventStore {
		t.Fatalf("last report %+v", last)
	}
	t.Logf("walked %d aggregates, %d events at %.0f events/s; %d events arrived during the walk through the topics", end.Aggregates, end.Events, end.Rate, during)
}

// TestRebuildFromEventStoreResumesAfterAnInterruption: a rebuild from the event store stopped
// after two pages resumes after them when run again (it walks fewer aggregates the second
// time) and still ends complete; resuming it from the topics is refused, since its consumer
// group starts at the end of the topics.
func TestRebuildFromEventStoreResumesAfterAnInterruption(t *testing.T) {
	e := newEnv(t)
	customers, orders, _ := e.history(rand.New(rand.NewPCG(5, 7)), 4, 6)
	opts := app.RebuildOptions{Source: app.SourceEventStore, PageSize: 4, Workers: 2,
		Poll: 200 * time.Millisecond, Linger: 200 * time.Millisecond}

	ctx, cancel := context.WithCancel(e.ctx())
	pages := 0
	first := opts
	first.Progress = func(rp app.RebuildProgress) {
		if rp.Phase == app.PhaseWalking && rp.Aggregates > 0 { // after a page (the first report is at the start)
			if pages++; pages == 2 {
				cancel()
			}
		}
	}
	if _, err := app.Rebuild(ctx, e.cfg, e.deps.Deps(), readmodel.ProjectionOrders, first); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted rebuild: %v, want canceled", err)
	}
	if _, err := app.Rebuild(e.ctx(), e.cfg, e.deps.Deps(), readmodel.ProjectionOrders, app.RebuildOptions{Poll: 200 * time.Millisecond}); !errors.Is(err, readmodel.ErrRebuildConflict) {
		t.Fatalf("resumed from the topics: %v, want a conflict", err)
	}
	var last app.RebuildProgress
	var walks []app.RebuildProgress
	second := opts
	second.Progress = func(rp app.RebuildProgress) {
		last = rp
		if rp.Phase == app.PhaseWalking {
			walks = append(walks, rp)
		}
	}
	v, err := app.Rebuild(e.ctx(), e.cfg, e.deps.Deps(), readmodel.ProjectionOrders, second)
	if err != nil || v != 2 || !last.Switched {
		t.Fatalf("resumed rebuild: v%d %v, last report %+v", v, err, last)
	}
	total := len(customers) + len(orders)
	if len(walks) == 0 || walks[0].Fraction <= 0 || walks[len(walks)-1].Aggregates > int64(total-8) {
		t.Fatalf("resumed walk %+v: want it to start after the 8 aggregates of the first two pages", walks)
	}
	custs := readmodel.NewCustomerTables(e.s, 1)
	for _, c := range customers { // the customers projection (v1) is not rebuilt: fill it for the comparison
		if err := custs.Save(e.ctx(), c); err != nil {
			t.Fatal(err)
		}
	}
	tables := readmodel.NewOrderTables(e.s, 2)
	if err := equalToReplay(e, tables, 1, orders, customers); err != nil {
		t.Fatal(err)
	}
	assertListedOnceUnderStatus(t, e, tables, orders)
}

// TestAbortStopsARebuildFromEventStore: AbortRebuild during the walk stops it (within a poll)
// with a conflict; readers never switch to the aborted version.
func TestAbortStopsARebuildFromEventStore(t *testing.T) {
	e := newEnv(t)
	customers, orders, _ := e.history(rand.New(rand.NewPCG(9, 9)), 4, 6)
	aborted := false
	var walked int64
	_, err := app.Rebuild(e.ctx(), e.cfg, e.deps.Deps(), readmodel.ProjectionOrders, app.RebuildOptions{
		Source: app.SourceEventStore, PageSize: 2, Workers: 1, Poll: 100 * time.Millisecond,
		Progress: func(rp app.RebuildProgress) {
			if rp.Phase == app.PhaseWalking {
				walked = rp.Aggregates
			}
			if rp.Phase != app.PhaseWalking || aborted {
				return
			}
			aborted = true
			if err := readmodel.AbortRebuild(e.ctx(), e.s, readmodel.ProjectionOrders, rp.Version); err != nil {
				t.Error(err)
			}
			time.Sleep(300 * time.Millisecond) // a few polls: the walk stops in the middle of what is left
		},
	})
	if !errors.Is(err, readmodel.ErrRebuildConflict) || walked >= int64(len(customers)+len(orders)) {
		t.Fatalf("rebuild after an abort: %v after walking %d aggregates, want a conflict before the end of the walk", err, walked)
	}
	if v, err := readmodel.LoadVersions(e.ctx(), e.s, readmodel.ProjectionOrders); err != nil || v.Active != 1 || v.Building != 0 {
		t.Fatalf("versions after the abort: %+v %v", v, err)
	}
}
