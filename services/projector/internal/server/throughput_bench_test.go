package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/segmentio/kafka-go"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/pkg/testinfra"
	"github.com/ordersys/ordersys/services/projector/internal/app"
	"github.com/ordersys/ordersys/services/projector/internal/consumer"
	"github.com/ordersys/ordersys/services/projector/internal/kafkaadmin"
)

// Size of BenchmarkProjectorThroughput's stream: 2,000 orders of 4 events each (created,
// confirmed, shipped, delivered), published round by round (every order's OrderCreated, then
// every OrderConfirmed, …): 8,000 events on a topic of 6 partitions (ORDERSYS_KAFKA_PARTITIONS'
// default), keyed by order as the relay publishes them.
const (
	tputOrders     = 2000
	tputCustomers  = 100
	tputPartitions = 6
	tputEvents     = tputOrders * 4
)

// BenchmarkProjectorThroughput measures, side by side in one run, the events per second of
// the orders read models (order_read_model, orders_by_customer, orders_by_status) built from
// the same 8,000 order events three ways, each with the projector's concurrency (per partition
// DefaultKeyLanes writers, each order's events on the lane of its key, in partition order):
//
//   - raw-cql: the read-model rows written as they were before fencing (one logged batch of
//     plain INSERTs and the left status row's DELETE per event, wall-clock timestamps), nothing
//     read: the baseline the issue compares with;
//   - fenced-save: the same rows written by readmodel's OrderTables.Save (version-derived USING
//     TIMESTAMP, customer details as separate statements), nothing read: the cost of fencing;
//   - projector: the real projector (Supervisor, consumer groups, decoding, spans, the orders
//     handler's reads and writes, offset commits) consuming the encoded envelopes, produced to
//     fresh topics beforehand. Its events/s runs from the first event applied until the group
//     has committed the end offsets of every partition; e2e_events/s includes the start (group
//     join, partition assignment: startup_s).
//
// There is no switch that turns fencing off in the projector, so there is no unfenced
// projector variant; fenced-save against raw-cql isolates the fenced write instead. Every
// variant writes fresh orders, checked afterwards (every order at version 4, DELIVERED).
// Figures only, never a pass/fail on time:
//
//	cd services/projector && go test -run '^$' -bench ProjectorThroughput -benchtime 1x ./internal/server/
func BenchmarkProjectorThroughput(b *testing.B) {
	e := newEnv(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	tables := readmodel.NewOrderTables(e.s, 1)
	var rawRate, fencedRate float64

	// direct writes the stream's rows with write, one goroutine per partition, and returns the rate.
	direct := func(b *testing.B, write func(prev *readmodel.Order, next readmodel.Order) error) float64 {
		var d time.Duration
		for range b.N {
			b.StopTimer()
			s := newTputStream(b, e, "order-events")
			b.StartTimer()
			t0 := time.Now()
			if err := s.eachLane(write); err != nil {
				b.Fatal(err)
			}
			d += time.Since(t0)
			b.StopTimer()
			tputVerify(ctx, b, tables, s.ids)
		}
		return float64(tputEvents*b.N) / d.Seconds()
	}
	b.Run("raw-cql", func(b *testing.B) {
		rawRate = direct(b, func(prev *readmodel.Order, next readmodel.Order) error {
			return plainSave(ctx, e.s, prev, next)
		})
		b.ReportMetric(rawRate, "events/s")
		b.ReportMetric(0, "ns/op")
	})
	b.Run("fenced-save", func(b *testing.B) {
		fencedRate = direct(b, func(prev *readmodel.Order, next readmodel.Order) error {
			return tables.Save(ctx, prev, next)
		})
		b.ReportMetric(fencedRate, "events/s")
		if rawRate > 0 {
			b.ReportMetric(fencedRate/rawRate, "fenced/raw-cql")
		}
		b.ReportMetric(0, "ns/op")
	})
	b.Run("projector", func(b *testing.B) {
		var steady, whole, startup time.Duration
		for range b.N {
			b.StopTimer()
			e.cfg.OrderTopic, e.cfg.CustomerTopic = testinfra.TopicName(b, "order-events"), testinfra.TopicName(b, "customer-events")
			e.cfg.GroupBase = "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			testinfra.CreateTopics(b, e.kafka.Brokers, tputPartitions, e.cfg.OrderTopic, e.cfg.CustomerTopic,
				consumer.DLQTopic(e.cfg.OrderTopic), consumer.DLQTopic(e.cfg.CustomerTopic))
			s := newTputStream(b, e, e.cfg.OrderTopic)
			if err := e.w.WriteMessages(ctx, s.msgs...); err != nil {
				b.Fatalf("produce: %v", err)
			}
			m := consumer.NewMetrics(nil)
			e.deps.Metrics = m
			group := app.GroupID(e.cfg.GroupBase, readmodel.ProjectionOrders, 1)
			applied := func() (n float64) {
				for _, t := range []string{order.EventOrderCreated, order.EventOrderConfirmed, order.EventOrderShipped, order.EventOrderDelivered} {
					n += metric(m.Applied, readmodel.ProjectionOrders, t)
				}
				return n
			}
			deadLetters := func() (n float64) {
				for _, r := range []string{app.ReasonUndecodable, app.ReasonUnknownEvent, app.ReasonForeignAggregate,
					app.ReasonUnappliable, app.ReasonGapUnhealable, app.ReasonUnreadableRow} {
					n += metric(m.DeadLetters, readmodel.ProjectionOrders, r)
				}
				return n
			}
			b.StartTimer()
			t0 := time.Now()
			_, stop := e.runSupervisor()
			var first time.Time
			for n := 0.0; n < tputEvents; n = applied() {
				if first.IsZero() && n > 0 {
					first = time.Now()
				}
				if time.Since(t0) > 10*time.Minute || deadLetters() > 0 {
					b.Fatalf("projector: %.0f of %d events applied after %s", n, tputEvents, time.Since(t0))
				}
				time.Sleep(2 * time.Millisecond)
			}
			for {
				lag, err := kafkaadmin.GroupLag(ctx, e.kafka, group, []string{e.cfg.OrderTopic})
				if err == nil && app.TotalLag(lag) == 0 {
					break
				}
				if time.Since(t0) > 10*time.Minute {
					b.Fatalf("group %s has not committed the end offsets: %+v, %v", group, lag, err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			done := time.Now()
			b.StopTimer()
			stop()
			if first.IsZero() { // every event applied before the first poll
				first = t0
			}
			steady, whole, startup = steady+done.Sub(first), whole+done.Sub(t0), startup+first.Sub(t0)
			tputVerify(ctx, b, tables, s.ids)
		}
		rate := float64(tputEvents*b.N) / steady.Seconds()
		b.ReportMetric(rate, "events/s")
		b.ReportMetric(float64(tputEvents*b.N)/whole.Seconds(), "e2e_events/s")
		b.ReportMetric(startup.Seconds()/float64(b.N), "startup_s")
		if rawRate > 0 {
			b.ReportMetric(rate/rawRate, "projector/raw-cql")
		}
		if fencedRate > 0 {
			b.ReportMetric(rate/fencedRate, "projector/fenced-save")
		}
		b.ReportMetric(0, "ns/op")
	})
}

// tputEvent is one event of the stream as read-model rows: the order's row before it (nil for
// the first event) and after it.
type tputEvent struct {
	prev, next *readmodel.Order
}

// tputStream is the benchmark's events: the messages as the relay publishes them, in
// publication order, and the rows they produce, per partition (lane) in partition order.
type tputStream struct {
	ids   []string
	msgs  []kafka.Message
	lanes [][]tputEvent
}

// newTputStream returns fresh orders' events, encoded for topic and assigned to partitions
// by the writer's balancer.
func newTputStream(b *testing.B, e *env, topic string) tputStream {
	b.Helper()
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	customers := make([]string, tputCustomers)
	for i := range customers {
		customers[i] = ids.New()
	}
	parts := make([]int, tputPartitions)
	for i := range parts {
		parts[i] = i
	}
	balancer := &kafka.Hash{}
	s := tputStream{lanes: make([][]tputEvent, tputPartitions)}
	orders := make([]*order.Order, tputOrders)
	rows := make([]*readmodel.Order, tputOrders)
	for round := range 4 {
		for i := range orders {
			var ev es.Event
			switch round {
			case 0:
				orders[i] = order.New(ids.New())
				s.ids = append(s.ids, orders[i].AggregateID())
				items := []order.Item{{ProductID: ids.New(), Quantity: 2, UnitPriceCents: 150}, {ProductID: ids.New(), Quantity: 1, UnitPriceCents: 999}}
				total, _ := order.Total(items)
				ev = order.OrderCreated{OrderID: orders[i].AggregateID(), CustomerID: customers[i%tputCustomers], Items: items, TotalCents: total}
			case 1:
				ev = order.OrderConfirmed{}
			case 2:
				ev = order.OrderShipped{TrackingNumber: fmt.Sprintf("TRK%08d", i), Carrier: "DHL"}
			default:
				ev = order.OrderDelivered{Signature: "J. Doe"}
			}
			o := orders[i]
			envs := es.NewEnvelopes(o, []es.Event{ev}, es.Metadata{CausationID: ids.New(), CorrelationID: "bench-" + o.AggregateID()[:8]},
				at.Add(time.Duration(round)*time.Minute), ids.New)
			if err := e.reg.EncodeEnvelope(&envs[0]); err != nil {
				b.Fatal(err)
			}
			if err := es.Replay(o, envs); err != nil {
				b.Fatal(err)
			}
			st := *o // Apply never writes into the state's slices
			next := &readmodel.Order{State: &st}
			msg := message(b, topic, envs[0], "")
			s.msgs = append(s.msgs, msg)
			lane := balancer.Balance(msg, parts...)
			s.lanes[lane] = append(s.lanes[lane], tputEvent{prev: rows[i], next: next})
			rows[i] = next
		}
	}
	return s
}

// eachLane calls write for every event, one goroutine per lane, each lane in order.
func (s tputStream) eachLane(write func(prev *readmodel.Order, next readmodel.Order) error) error {
	// The projector's concurrency: per partition, DefaultKeyLanes writers, each order on the lane
	// of its key, in partition order within a lane.
	var lanes [][]tputEvent
	for _, part := range s.lanes {
		sub := make([][]tputEvent, consumer.DefaultKeyLanes)
		for _, ev := range part {
			k := consumer.KeyLane([]byte(ev.next.State.AggregateID()), len(sub))
			sub[k] = append(sub[k], ev)
		}
		lanes = append(lanes, sub...)
	}
	errs := make([]error, len(lanes))
	var wg sync.WaitGroup
	for i, lane := range lanes {
		wg.Go(func() {
			for _, ev := range lane {
				if err := write(ev.prev, *ev.next); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// tputVerify fails unless every order's row is at its final version, DELIVERED.
func tputVerify(ctx context.Context, b *testing.B, tables readmodel.OrderTables, orderIDs []string) {
	b.Helper()
	if err := benchEach(orderIDs, benchWorkers, func(id string) error {
		o, err := tables.Get(ctx, id)
		if err != nil {
			return err
		}
		if o.State.Version() != 4 || o.State.Status != order.StatusDelivered {
			return fmt.Errorf("order %s at v%d %s, want v4 DELIVERED", id, o.State.Version(), o.State.Status)
		}
		return nil
	}); err != nil {
		b.Fatalf("read models: %v", err)
	}
}

// tputItem is an order line as the items column holds it.
type tputItem struct {
	ProductID      string `json:"product_id"`
	Quantity       int32  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
}

// plainSave is the order write as it was before fencing (the baseline of pkg/readmodel's
// BenchmarkOrderWrite, here with the real items and no DELETE for a new order or an unchanged
// status): one logged batch of plain INSERTs and the DELETE of the row under the status the
// order left, with wall-clock timestamps.
func plainSave(ctx context.Context, s *gocql.Session, prev *readmodel.Order, next readmodel.Order) error {
	const cols = `order_id, customer_id, status, items, total_cents, version, tracking_number, carrier, cancel_reason, delivery_signature, customer_email, customer_name, customer_version, created_at, updated_at`
	o := next.State
	id, err := gocql.ParseUUID(o.AggregateID())
	if err != nil {
		return err
	}
	cust, err := gocql.ParseUUID(o.CustomerID)
	if err != nil {
		return err
	}
	lines := make([]tputItem, len(o.Items))
	for i, it := range o.Items {
		lines[i] = tputItem{ProductID: it.ProductID, Quantity: it.Quantity, UnitPriceCents: it.UnitPriceCents}
	}
	items, err := json.Marshal(lines)
	if err != nil {
		return err
	}
	shard := readmodel.StatusShard(o.AggregateID())
	vals := []any{id, cust, o.Status.String(), string(items), o.TotalCents, o.Version(), o.TrackingNumber, o.Carrier, o.CancelReason,
		o.DeliverySignature, next.CustomerEmail, next.CustomerName, next.CustomerVersion, o.CreatedAt, o.UpdatedAt}
	batch := s.NewBatch(gocql.LoggedBatch).WithContext(ctx)
	batch.Query(`INSERT INTO order_read_model (`+cols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, vals...)
	batch.Query(`INSERT INTO orders_by_customer (`+cols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, vals...)
	if prev != nil && prev.State.Status != o.Status {
		batch.Query(`DELETE FROM orders_by_status WHERE status = ? AND shard = ? AND created_at = ? AND order_id = ?`,
			prev.State.Status.String(), shard, o.CreatedAt, id)
	}
	batch.Query(`INSERT INTO orders_by_status (shard, `+cols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		append([]any{shard}, vals...)...)
	return s.ExecuteBatch(batch)
}
