package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/pkg/telemetry"
	"github.com/ordersys/ordersys/pkg/testinfra"
	"github.com/ordersys/ordersys/services/projector/internal/app"
	"github.com/ordersys/ordersys/services/projector/internal/consumer"
	"github.com/ordersys/ordersys/services/projector/internal/grpcapi"
	"github.com/ordersys/ordersys/services/projector/internal/server"
)

// spans records every span the projector ends, for the trace assertions.
var spans = tracetest.NewSpanRecorder()

func TestMain(m *testing.M) {
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
	otel.SetTextMapPropagator(telemetry.Propagator())
	os.Exit(m.Run())
}

// testPartitions is the partition count of the test topics.
const testPartitions = 3

// env is one test's world: a fresh keyspace with the event store, fresh topics, and the
// projector's configuration and dependencies on them.
type env struct {
	t             testing.TB
	s             *gocql.Session
	keyspace      string
	store         *cql.EventStore
	reg           *es.Registry
	kafka         okafka.Cluster
	orderTopic    string
	customerTopic string
	cfg           app.Config
	deps          server.Adapters
	w             *kafka.Writer
	clock         time.Time
}

func newEnv(t testing.TB) *env {
	t.Helper()
	testinfra.Require(t)
	s, ks := cqltest.Keyspace(t)
	e := &env{t: t, s: s, keyspace: ks, reg: codec.NewRegistry(), kafka: testinfra.KafkaCluster(),
		orderTopic: testinfra.TopicName(t, "order-events"), customerTopic: testinfra.TopicName(t, "customer-events"),
		clock: time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)}
	testinfra.CreateTopics(t, e.kafka.Brokers, testPartitions, e.orderTopic, e.customerTopic,
		consumer.DLQTopic(e.orderTopic), consumer.DLQTopic(e.customerTopic))
	e.store = cql.NewEventStore(s, e.reg, cql.Options{})
	e.cfg = app.Config{
		GroupBase:  "test-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		OrderTopic: e.orderTopic, CustomerTopic: e.customerTopic,
		PollInterval: 200 * time.Millisecond, RetireGrace: time.Second, CommitInterval: 100 * time.Millisecond,
	}
	dl := consumer.NewDeadLetters(e.kafka, s)
	t.Cleanup(func() { _ = dl.Close() })
	e.deps = server.Adapters{Kafka: e.kafka, Session: s, Events: e.store, Registry: e.reg, DeadLetters: dl,
		Metrics: consumer.NewMetrics(nil), Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	e.w = &kafka.Writer{Addr: kafka.TCP(e.kafka.Brokers...), Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	t.Cleanup(func() { _ = e.w.Close() })
	return e
}

func (e *env) ctx() context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	e.t.Cleanup(cancel)
	return c
}

// tick returns a fresh event time, one second after the previous one.
func (e *env) tick() time.Time {
	e.clock = e.clock.Add(time.Second)
	return e.clock
}

// append stores events on the aggregate in the event store (and applies them to a), returning
// the encoded envelopes.
func (e *env) append(a es.Aggregate, evs ...es.Event) []es.Envelope {
	e.t.Helper()
	expected := a.Version()
	envs := es.NewEnvelopes(a, evs, es.Metadata{CausationID: gocql.TimeUUID().String(), CorrelationID: "corr-" + a.AggregateID()[:8]},
		e.tick(), func() string { return gocql.TimeUUID().String() })
	for i := range envs {
		if err := e.reg.EncodeEnvelope(&envs[i]); err != nil {
			e.t.Fatal(err)
		}
	}
	if _, err := e.store.Append(e.ctx(), es.AppendRequest{AggregateID: a.AggregateID(), AggregateType: a.AggregateType(),
		ExpectedVersion: expected, Events: envs}); err != nil {
		e.t.Fatalf("append %s: %v", a.AggregateID(), err)
	}
	if err := es.Replay(a, envs); err != nil {
		e.t.Fatal(err)
	}
	return envs
}

// message renders an envelope as the relay publishes it.
func message(t testing.TB, topic string, env es.Envelope, traceparent string) kafka.Message {
	t.Helper()
	b, err := codec.MarshalEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	if traceparent == "" {
		traceparent = env.TraceParent
	}
	return kafka.Message{Topic: topic, Key: []byte(env.AggregateID), Value: b, Headers: []kafka.Header{
		{Key: "event_id", Value: []byte(env.EventID)},
		{Key: "event_type", Value: []byte(env.EventType)},
		{Key: "event_version", Value: []byte(strconv.Itoa(int(env.SchemaVersion)))},
		{Key: "aggregate_type", Value: []byte(env.AggregateType)},
		{Key: "aggregate_id", Value: []byte(env.AggregateID)},
		{Key: "sequence", Value: []byte(strconv.FormatInt(env.Sequence, 10))},
		{Key: "correlation_id", Value: []byte(env.CorrelationID)},
		{Key: "causation_id", Value: []byte(env.CausationID)},
		{Key: "traceparent", Value: []byte(traceparent)},
	}}
}

// publish sends the envelopes, in order, to the topic of their aggregate type.
func (e *env) publish(envs ...es.Envelope) {
	e.t.Helper()
	msgs := make([]kafka.Message, len(envs))
	for i, env := range envs {
		msgs[i] = message(e.t, e.topicOf(env.AggregateType), env, "")
	}
	e.write(msgs...)
}

func (e *env) write(msgs ...kafka.Message) {
	e.t.Helper()
	if err := e.w.WriteMessages(e.ctx(), msgs...); err != nil {
		e.t.Fatalf("publish: %v", err)
	}
}

func (e *env) topicOf(aggregateType string) string {
	if aggregateType == customer.AggregateType {
		return e.customerTopic
	}
	return e.orderTopic
}

// runSupervisor runs the projector's supervisor until the returned stop is called (or the test ends).
func (e *env) runSupervisor() (*app.Supervisor, func()) {
	sup := app.NewSupervisor(e.cfg, e.deps.Deps())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = sup.Run(ctx)
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); wg.Wait() }) }
	e.t.Cleanup(stop)
	return sup, stop
}

// adminServer returns the admin service on the use cases admin and the env's dead letters,
// re-driven with pub, as Run wires it.
func (e *env) adminServer(admin *app.Admin, pub *okafka.Publisher) *grpcapi.AdminServer {
	return grpcapi.NewAdminServer(admin, cql.NewDeadLetters(e.s), pub, e.orderTopic, e.customerTopic)
}

// eventually retries check until it returns nil or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// orderAt waits until the order's row is at version v in the given table version.
func (e *env) orderAt(tableVersion int, id string, v int64) readmodel.Order {
	e.t.Helper()
	var got readmodel.Order
	eventually(e.t, 60*time.Second, func() error {
		o, err := readmodel.NewOrderTables(e.s, tableVersion).Get(e.ctx(), id)
		if err != nil {
			return err
		}
		if o.State.Version() != v {
			return fmt.Errorf("order %s at version %d, want %d", id, o.State.Version(), v)
		}
		got = o
		return nil
	})
	return got
}

// newOrder returns a created order's events (stored) for the customer.
func (e *env) newOrder(customerID string, lines int) (*order.Order, []es.Envelope) {
	e.t.Helper()
	o := order.New(gocql.TimeUUID().String())
	var items []order.Item
	for i := range lines {
		items = append(items, order.Item{ProductID: gocql.TimeUUID().String(), Quantity: int32(i + 1), UnitPriceCents: 250})
	}
	total, _ := order.Total(items)
	return o, e.append(o, order.OrderCreated{OrderID: o.AggregateID(), CustomerID: customerID, Items: items, TotalCents: total})
}

// newCustomer returns a registered customer's event (stored).
func (e *env) newCustomer(first, last, email string) (*customer.Customer, []es.Envelope) {
	e.t.Helper()
	c := customer.New(gocql.TimeUUID().String())
	return c, e.append(c, customer.CustomerRegistered{CustomerID: c.AggregateID(), Email: customer.Email(email),
		FirstName: first, LastName: last, Tier: customer.TierBronze})
}

// metric reads one series of a projector metric vector for the projection at version 1.
func metric(vec interface {
	WithLabelValues(...string) prometheus.Counter
}, projection string, extra ...string) float64 {
	return testutil.ToFloat64(vec.WithLabelValues(append([]string{projection, "1"}, extra...)...))
}

// recordingHealth records the last serving status set.
type recordingHealth struct {
	mu     sync.Mutex
	status string
}

func (h *recordingHealth) SetServingStatus(_ string, s healthpb.HealthCheckResponse_ServingStatus) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.status = s.String()
}

func (h *recordingHealth) get() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.status
}
