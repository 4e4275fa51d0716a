package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/grpcx"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/services/projector/internal/app"
	"github.com/ordersys/ordersys/services/projector/internal/consumer"
	"github.com/ordersys/ordersys/services/projector/internal/server"
)

// blockingHandler wraps a handler and blocks on one event until its context ends, as a
// projector killed in the middle of a write would.
type blockingHandler struct {
	inner     app.Handler
	aggregate string
	sequence  int64
	entered   chan struct{}
	once      sync.Once
}

func (h *blockingHandler) Project(ctx context.Context, env es.Envelope) (app.Result, error) {
	if env.AggregateID == h.aggregate && env.Sequence == h.sequence {
		h.once.Do(func() { close(h.entered) })
		<-ctx.Done()
		return app.Result{}, ctx.Err()
	}
	return h.inner.Project(ctx, env)
}

// TestOffsetsCommittedOnlyAfterWritesRestartLosesNothing stops a projector while it is in the
// middle of one message and restarts it mid-stream: the message was not committed (the
// restarted projector applies it, and nothing else would), nothing is lost, and what was
// committed before the stop is not replayed in full.
func TestOffsetsCommittedOnlyAfterWritesRestartLosesNothing(t *testing.T) {
	e := newEnv(t)
	custID := gocql.TimeUUID().String()
	var orders []*order.Order
	var first, second []es.Envelope
	for range 24 {
		o, evs := e.newOrder(custID, 1)
		orders = append(orders, o)
		first = append(first, evs...)
		second = append(second, e.append(o, order.OrderConfirmed{})...)
	}
	blocked := orders[5]
	e.publish(first...)
	e.publish(second[:12]...) // includes blocked's sequence 2

	newConsumer := func(h app.Handler, m *consumer.Metrics) *consumer.Consumer {
		return consumer.New(consumer.Config{
			Kafka: e.kafka, GroupID: app.GroupID(e.cfg.GroupBase, readmodel.ProjectionOrders, 1),
			Topics: []string{e.orderTopic}, Projection: readmodel.ProjectionOrders, Version: 1, Handler: h, Registry: e.reg,
			DeadLetters: e.deps.DeadLetters, Metrics: m, Logger: e.deps.Logger, CommitInterval: 100 * time.Millisecond,
		})
	}
	tables := readmodel.NewOrderTables(e.s, 1)
	inner := app.NewOrdersHandler(tables, e.store)
	bh := &blockingHandler{inner: inner, aggregate: blocked.AggregateID(), sequence: 2, entered: make(chan struct{})}
	m1 := consumer.NewMetrics(nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = newConsumer(bh, m1).Run(ctx)
	}()
	select {
	case <-bh.entered:
	case <-time.After(60 * time.Second):
		t.Fatal("the consumer never reached the blocked message")
	}
	// Let every other order's first event land, then stop mid-stream.
	eventually(t, 30*time.Second, func() error {
		for _, o := range orders {
			if _, err := tables.Get(e.ctx(), o.AggregateID()); err != nil {
				return err
			}
		}
		return nil
	})
	cancel()
	<-done
	if got, _ := tables.Get(e.ctx(), blocked.AggregateID()); got.State.Version() != 1 {
		t.Fatalf("blocked order at version %d", got.State.Version())
	}
	processed := testutil.ToFloat64(m1.Applied.WithLabelValues(readmodel.ProjectionOrders, "1", order.EventOrderCreated)) +
		testutil.ToFloat64(m1.Applied.WithLabelValues(readmodel.ProjectionOrders, "1", order.EventOrderConfirmed))

	// The rest of the stream arrives while the projector is down; then it restarts.
	e.publish(second[12:]...)
	m2 := consumer.NewMetrics(nil)
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan struct{})
	go func() {
		defer close(done2)
		_ = newConsumer(inner, m2).Run(ctx2)
	}()
	defer func() { cancel2(); <-done2 }()
	for _, o := range orders {
		e.orderAt(1, o.AggregateID(), 2)
	}
	redelivered := testutil.ToFloat64(m2.Duplicates.WithLabelValues(readmodel.ProjectionOrders, "1"))
	if redelivered >= processed {
		t.Fatalf("after the restart %v of the %v messages processed before were delivered again: offsets were not committed", redelivered, processed)
	}
	t.Logf("processed before the stop: %v, redelivered after the restart: %v", processed, redelivered)
}

// TestRebuildSwitchesVersionsWithoutDowntime rebuilds both projections while the projector runs
// and readers read: the rebuilt versions equal the live ones, readers switch, and the old
// versions stop being written after the grace period.
func TestRebuildSwitchesVersionsWithoutDowntime(t *testing.T) {
	e := newEnv(t)
	var customers []*customer.Customer
	var orders []*order.Order
	for i := range 3 {
		c, evs := e.newCustomer("Grace", fmt.Sprintf("Hopper%d", i), fmt.Sprintf("grace%d@example.com", i))
		e.publish(evs...)
		customers = append(customers, c)
		for j := range 4 {
			o, evs := e.newOrder(c.AggregateID(), j+1)
			if j%2 == 0 {
				evs = append(evs, e.append(o, order.OrderConfirmed{})...)
			}
			e.publish(evs...)
			orders = append(orders, o)
		}
		e.publish(e.append(c, customer.CustomerEmailChanged{OldEmail: c.Email, NewEmail: customer.Email(fmt.Sprintf("g%d@example.org", i))})...)
	}
	sup, _ := e.runSupervisor()
	for _, o := range orders {
		e.orderAt(1, o.AggregateID(), o.Version())
	}
	store := readmodel.NewStore(e.s, readmodel.Options{VersionTTL: 100 * time.Millisecond})

	// Readers keep reading during the rebuild and must never fail.
	var reads, failures atomic.Int64
	rctx, stopReads := context.WithCancel(context.Background())
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		for i := 0; rctx.Err() == nil; i++ {
			o := orders[i%len(orders)]
			got, err := store.GetOrder(rctx, o.AggregateID())
			if rctx.Err() != nil {
				return
			}
			reads.Add(1)
			if err != nil || got.State.Version() != o.Version() {
				failures.Add(1)
				t.Logf("read during rebuild: %+v %v", got.State, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	var progress []app.RebuildProgress
	for _, p := range readmodel.Projections() {
		v, err := app.Rebuild(e.ctx(), e.cfg, e.deps.Deps(), p, app.RebuildOptions{
			Poll: 200 * time.Millisecond, Linger: 200 * time.Millisecond,
			Progress: func(rp app.RebuildProgress) { progress = append(progress, rp) },
		})
		if err != nil || v != 2 {
			t.Fatalf("rebuild %s: version %d, %v", p, v, err)
		}
	}
	time.Sleep(300 * time.Millisecond) // readers read the new version for a while too
	stopReads()
	rwg.Wait()
	if failures.Load() > 0 || reads.Load() == 0 {
		t.Fatalf("%d of %d reads failed during the rebuild", failures.Load(), reads.Load())
	}
	if len(progress) == 0 || !progress[len(progress)-1].Switched {
		t.Fatalf("progress %+v", progress)
	}

	for _, p := range readmodel.Projections() {
		v, err := readmodel.LoadVersions(e.ctx(), e.s, p)
		if err != nil || v.Active != 2 || v.Previous != 1 || v.Building != 0 {
			t.Fatalf("%s versions %+v %v", p, v, err)
		}
	}

	// The rebuilt versions equal the live ones.
	v1, v2 := readmodel.NewOrderTables(e.s, 1), readmodel.NewOrderTables(e.s, 2)
	for _, o := range orders {
		a, b := e.orderAt(1, o.AggregateID(), o.Version()), e.orderAt(2, o.AggregateID(), o.Version())
		if !reflect.DeepEqual(a.State, b.State) || a.CustomerEmail != b.CustomerEmail || a.CustomerName != b.CustomerName {
			t.Fatalf("order %s\nlive    %+v %q %q\nrebuilt %+v %q %q", o.AggregateID(), a.State, a.CustomerEmail, a.CustomerName,
				b.State, b.CustomerEmail, b.CustomerName)
		}
		if b.CustomerEmail == "" || b.CustomerEmail[len(b.CustomerEmail)-4:] != ".org" {
			t.Fatalf("rebuilt order %s has customer email %q", o.AggregateID(), b.CustomerEmail)
		}
	}
	for _, c := range customers {
		for _, st := range []order.Status{order.StatusCreated, order.StatusConfirmed} {
			p1, err1 := v1.ListByStatus(e.ctx(), st, 100, "")
			p2, err2 := v2.ListByStatus(e.ctx(), st, 100, "")
			if err1 != nil || err2 != nil || !reflect.DeepEqual(orderIDs(p1.Orders), orderIDs(p2.Orders)) {
				t.Fatalf("%s lists differ: %v %v / %v %v", st, orderIDs(p1.Orders), err1, orderIDs(p2.Orders), err2)
			}
		}
		p1, _ := v1.ListByCustomer(e.ctx(), c.AggregateID(), 100, "")
		p2, _ := v2.ListByCustomer(e.ctx(), c.AggregateID(), 100, "")
		if !reflect.DeepEqual(orderIDs(p1.Orders), orderIDs(p2.Orders)) || len(p2.Orders) != 4 {
			t.Fatalf("customer lists differ: %v / %v", orderIDs(p1.Orders), orderIDs(p2.Orders))
		}
		a, err1 := readmodel.NewCustomerTables(e.s, 1).Get(e.ctx(), c.AggregateID())
		b, err2 := readmodel.NewCustomerTables(e.s, 2).Get(e.ctx(), c.AggregateID())
		if err1 != nil || err2 != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("customer %s: live %+v %v, rebuilt %+v %v", c.AggregateID(), a, err1, b, err2)
		}
	}

	// An event after the switch reaches the new version, which readers now read.
	e.publish(e.append(orders[0], order.OrderCancelled{Reason: "late"})...)
	e.orderAt(2, orders[0].AggregateID(), orders[0].Version())
	got, err := store.GetOrder(e.ctx(), orders[0].AggregateID())
	if err != nil || got.State.Status != order.StatusCancelled {
		t.Fatalf("store after switch: %+v %v", got.State, err)
	}

	// After the grace period only version 2 is written.
	eventually(t, 15*time.Second, func() error {
		if r := sup.Running(); !reflect.DeepEqual(r[readmodel.ProjectionOrders], []int{2}) || !reflect.DeepEqual(r[readmodel.ProjectionCustomers], []int{2}) {
			return fmt.Errorf("running %v", r)
		}
		return nil
	})
}

// TestHealthNotServingWhileKafkaIsUnreachable runs the health watch against a broker address
// nothing listens on.
func TestHealthNotServingWhileKafkaIsUnreachable(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		brokers []string
		want    string
	}{
		{[]string{"127.0.0.1:1"}, "NOT_SERVING"},
		{e.kafka.Brokers, "SERVING"},
	} {
		h := &recordingHealth{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			grpcx.WatchHealth(ctx, h, grpcx.HealthWatch{Services: []string{""}, Interval: 200 * time.Millisecond,
				Logger: slog.New(slog.DiscardHandler), Probes: server.Probes(e.s, okafka.Cluster{Brokers: tc.brokers})})
		}()
		eventually(t, 20*time.Second, func() error {
			if got := h.get(); got != tc.want {
				return fmt.Errorf("health %q with brokers %v, want %s", got, tc.brokers, tc.want)
			}
			return nil
		})
		cancel()
		<-done
	}
}
