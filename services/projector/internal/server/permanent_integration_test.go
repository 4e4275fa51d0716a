package server_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/pkg/testinfra"
	"github.com/ordersys/ordersys/services/projector/internal/app"
	"github.com/ordersys/ordersys/services/projector/internal/consumer"
)

// permanentTimeout bounds how long a permanent error may take to reach the dead-letter path:
// far below the time a retried message would block its partition for.
const permanentTimeout = 45 * time.Second

// runConsumer runs one consumer of cfg (group, topics and handler set by the caller) until the
// test ends or stop is called.
func (e *env) runConsumer(cfg consumer.Config) (stop func()) {
	e.t.Helper()
	cfg.Kafka, cfg.Registry, cfg.DeadLetters, cfg.Metrics, cfg.Logger = e.kafka, e.reg, e.deps.DeadLetters, e.deps.Metrics, e.deps.Logger
	cfg.Projection, cfg.CommitInterval = readmodel.ProjectionOrders, 100*time.Millisecond
	if cfg.Version == 0 {
		cfg.Version = 1
	}
	if cfg.GroupID == "" {
		cfg.GroupID = app.GroupID(e.cfg.GroupBase, cfg.Projection, cfg.Version)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = consumer.New(cfg).Run(ctx)
	}()
	stop = sync.OnceFunc(func() { cancel(); wg.Wait() })
	e.t.Cleanup(stop)
	return stop
}

// deadLettered waits until the orders projection has dead-lettered n messages for reason.
func (e *env) deadLettered(reason string, n float64) {
	e.t.Helper()
	eventually(e.t, permanentTimeout, func() error {
		if got := metric(e.deps.Metrics.DeadLetters, readmodel.ProjectionOrders, reason); got != n {
			return fmt.Errorf("dead letters %s = %v, want %v", reason, got, n)
		}
		return nil
	})
}

// TestUnreadableRowGoesToDLQAtOnce: an order row whose items column is not JSON is a permanent
// error (finding 3 of issue 11: it was retried forever, blocking the partition). The event goes
// to the DLQ at once and the next order of the same partition is projected.
func TestUnreadableRowGoesToDLQAtOnce(t *testing.T) {
	e := newEnv(t)
	e.w.Balancer = kafka.BalancerFunc(func(kafka.Message, ...int) int { return 0 })
	custID := gocql.TimeUUID().String()
	bad, badEvents := e.newOrder(custID, 1)
	badEvents = append(badEvents, e.append(bad, order.OrderConfirmed{})...)
	next, nextEvents := e.newOrder(custID, 1)
	e.publish(badEvents[0])
	_, stop := e.runSupervisor()
	e.orderAt(1, bad.AggregateID(), 1)
	eventually(t, permanentTimeout, func() error { // done with, so committed when it stops
		if n := metric(e.deps.Metrics.Applied, readmodel.ProjectionOrders, order.EventOrderCreated); n != 1 {
			return fmt.Errorf("%v OrderCreated applied, want 1", n)
		}
		return nil
	})
	stop() // a projector that kept the row it wrote would not read it again: start a new one

	id, _ := gocql.ParseUUID(bad.AggregateID())
	if err := e.s.Query(`UPDATE order_read_model SET items = '{not json' WHERE order_id = ?`, id).Exec(); err != nil {
		t.Fatal(err)
	}
	_, stop = e.runSupervisor()
	defer stop()
	e.publish(badEvents[1], nextEvents[0])
	e.deadLettered(app.ReasonUnreadableRow, 1)
	e.orderAt(1, next.AggregateID(), 1)
}

// noStateHandler hands the real readmodel.Save an order without a state, as a handler bug or
// a history that never creates the aggregate would.
type noStateHandler struct{ tables readmodel.OrderTables }

func (h noStateHandler) Project(ctx context.Context, env es.Envelope) (app.Result, error) {
	return app.Result{}, h.tables.Save(ctx, nil, readmodel.Order{State: order.New(env.AggregateID)})
}

// TestNoStateToSaveGoesToDLQAtOnce: "no state to save" is permanent (it was retried forever).
func TestNoStateToSaveGoesToDLQAtOnce(t *testing.T) {
	e := newEnv(t)
	e.w.Balancer = kafka.BalancerFunc(func(kafka.Message, ...int) int { return 0 })
	_, first := e.newOrder(gocql.TimeUUID().String(), 1)
	_, second := e.newOrder(gocql.TimeUUID().String(), 1)
	e.publish(first[0], second[0])
	e.runConsumer(consumer.Config{Topics: []string{e.orderTopic}, Handler: noStateHandler{readmodel.NewOrderTables(e.s, 1)}})
	e.deadLettered(app.ReasonUnappliable, 2)
}

// TestOversizedDeadLetterIsPublishedWithoutItsValue: a 1.5 MiB message (its topic allows it) is
// larger than the dead-letter writer's 1 MiB batch; it was retried forever. It is now published
// to the DLQ without its value (header dlq_value_omitted = its size), the dead_letters table keeps
// the value, and the partition moves on.
func TestOversizedDeadLetterIsPublishedWithoutItsValue(t *testing.T) {
	e := newEnv(t)
	topic := testinfra.TopicName(t, "big-events")
	testinfra.CreateTopics(t, e.kafka.Brokers, 1, topic, consumer.DLQTopic(topic))
	client := &kafka.Client{Addr: kafka.TCP(e.kafka.Brokers...), Timeout: 10 * time.Second}
	resp, err := client.AlterConfigs(e.ctx(), &kafka.AlterConfigsRequest{Resources: []kafka.AlterConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
		Configs: []kafka.AlterConfigRequestConfig{{Name: "max.message.bytes", Value: strconv.Itoa(4 << 20)}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range resp.Errors {
		if err != nil {
			t.Fatal(err)
		}
	}
	big := bytes.Repeat([]byte{0xff}, 3<<19) // 1.5 MiB, not an envelope
	good, goodEvents := e.newOrder(gocql.TimeUUID().String(), 1)
	w := &kafka.Writer{Addr: kafka.TCP(e.kafka.Brokers...), RequiredAcks: kafka.RequireAll, BatchBytes: 4 << 20, BatchTimeout: time.Millisecond}
	defer w.Close()
	if err := w.WriteMessages(e.ctx(), kafka.Message{Topic: topic, Key: []byte(gocql.TimeUUID().String()), Value: big},
		message(t, topic, goodEvents[0], "")); err != nil {
		t.Fatal(err)
	}
	e.runConsumer(consumer.Config{Topics: []string{topic}, Handler: app.NewOrdersHandler(readmodel.NewOrderTables(e.s, 1), e.store)})
	e.deadLettered(app.ReasonUndecodable, 1)
	e.orderAt(1, good.AggregateID(), 1)

	dlq := readAll(t, e.kafka.Brokers, consumer.DLQTopic(topic), 1)
	if got := headerOf(dlq[0], okafka.HeaderDLQValueOmitted); got != strconv.Itoa(len(big)) || len(dlq[0].Value) != 0 {
		t.Fatalf("dead letter: %s = %q, value %d bytes", okafka.HeaderDLQValueOmitted, got, len(dlq[0].Value))
	}
	var stored []byte
	if err := e.s.Query(`SELECT envelope FROM dead_letters WHERE topic = ?`, consumer.DLQTopic(topic)).Scan(&stored); err != nil || !bytes.Equal(stored, big) {
		t.Fatalf("dead_letters row holds %d bytes (%v), want the %d-byte value", len(stored), err, len(big))
	}
}

// TestStalledPartitionShowsInMetricAndHealth: a message that keeps failing transiently (the
// table version it writes does not exist) stalls its partition; that shows in
// ordersys_projector_partition_stalled and the health service ordersys.projector.progress, and both
// clear once the message goes through.
func TestStalledPartitionShowsInMetricAndHealth(t *testing.T) {
	e := newEnv(t)
	e.w.Balancer = kafka.BalancerFunc(func(kafka.Message, ...int) int { return 0 })
	const version = 7 // no tables yet
	o, events := e.newOrder(gocql.TimeUUID().String(), 1)
	e.publish(events...)
	health := &recordingHealth{}
	stalls := consumer.NewStalls(health, nil)
	e.runConsumer(consumer.Config{Topics: []string{e.orderTopic}, Version: version,
		Handler:      app.NewOrdersHandler(readmodel.NewOrderTables(e.s, version), e.store),
		RetryBackoff: 50 * time.Millisecond, MaxRetryBackoff: 200 * time.Millisecond, StallAfter: time.Second, Stalls: stalls})
	gauge := func() float64 {
		return testutil.ToFloat64(e.deps.Metrics.Stalled.WithLabelValues(readmodel.ProjectionOrders, strconv.Itoa(version), e.orderTopic, "0"))
	}
	eventually(t, 30*time.Second, func() error {
		if g, h := gauge(), health.get(); g != 1 || h != "NOT_SERVING" {
			return fmt.Errorf("stalled gauge %v, health %s", g, h)
		}
		return nil
	})
	if got := stalls.Stalled(); len(got) != 1 {
		t.Fatalf("stalled partitions %v", got)
	}

	if err := readmodel.CreateTables(e.ctx(), e.s, readmodel.ProjectionOrders, version); err != nil {
		t.Fatal(err)
	}
	e.orderAt(version, o.AggregateID(), 1)
	eventually(t, 10*time.Second, func() error {
		if g, h := gauge(), health.get(); g != 0 || h != "SERVING" {
			return fmt.Errorf("stalled gauge %v, health %s", g, h)
		}
		return nil
	})
}
