package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/segmentio/kafka-go"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/grpcx"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/kafka/kafkatest"
	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/pkg/testinfra"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeHealthMetricsProjectionAndVersions runs the projector binary's run function against
// the real servers, calls its gRPC health service and metrics endpoint as a client would,
// projects one event, runs `versions` and `rebuild`, and stops it with its context.
func TestServeHealthMetricsProjectionAndVersions(t *testing.T) {
	testinfra.Require(t)
	s, ks := cqltest.Keyspace(t)
	brokers := testinfra.KafkaBrokers()
	orderTopic, customerTopic := testinfra.TopicName(t, "order-events"), testinfra.TopicName(t, "customer-events")
	testinfra.CreateTopics(t, brokers, 2, orderTopic, customerTopic)
	t.Cleanup(func() {
		client := &kafka.Client{Addr: kafka.TCP(brokers...)}
		_, _ = client.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{orderTopic + ".projector.dlq", customerTopic + ".projector.dlq"}})
	})
	grpcAddr, metricsAddr := freeAddr(t), freeAddr(t)
	serveProjector(t, ks, nil, orderTopic, customerTopic, grpcAddr, metricsAddr)

	id := publishOrder(t, s, okafka.Cluster{Brokers: brokers}, orderTopic)
	store := readmodel.NewStore(s, readmodel.Options{})
	waitFor(t, func() error {
		_, err := store.GetOrder(context.Background(), id)
		return err
	})

	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"ordersys_projector_events_applied_total", "ordersys_projector_event_lag_seconds", "ordersys_projector_consumer_lag_messages", "ordersys_grpc_server_handled_total"} {
		if !bytes.Contains(body, []byte(name)) {
			t.Errorf("metrics lack %s", name)
		}
	}

	// Rebuild the orders projection while serve runs, then list the versions.
	var out bytes.Buffer
	rctx, rcancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer rcancel()
	if err := run(rctx, []string{"rebuild", "-source", "topics", readmodel.ProjectionOrders}, &out); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "version 2 is active") {
		t.Fatalf("rebuild output:\n%s", out.String())
	}
	if got, err := readmodel.NewOrderTables(s, 2).Get(context.Background(), id); err != nil || got.State.Version() != 1 {
		t.Fatalf("rebuilt order: %+v %v", got, err)
	}
	// And again from the event store.
	out.Reset()
	if err := run(rctx, []string{"rebuild", readmodel.ProjectionOrders}, &out); err != nil { // the default source
		t.Fatalf("rebuild from the event store: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "orders v3: event store 100.0%  1 aggregates  1 events") || !strings.Contains(out.String(), "version 3 is active") {
		t.Fatalf("rebuild from the event store, output:\n%s", out.String())
	}
	if got, err := readmodel.NewOrderTables(s, 3).Get(context.Background(), id); err != nil || got.State.Version() != 1 {
		t.Fatalf("order rebuilt from the event store: %+v %v", got, err)
	}
	if err := run(context.Background(), []string{"rebuild", "-source", "kafka", readmodel.ProjectionOrders}, io.Discard); err == nil {
		t.Fatal("rebuild from an unknown source succeeded")
	}
	out.Reset()
	if err := run(context.Background(), []string{"versions"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "orders     active=3 building=0 previous=2") {
		t.Fatalf("versions output:\n%s", out.String())
	}
	if err := run(context.Background(), []string{"rebuild", "nothing"}, io.Discard); err == nil {
		t.Fatal("rebuild of an unknown projection succeeded")
	}
}

func waitFor(t *testing.T, check func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// serveProjector sets the projector's environment, runs `projector serve` until the test ends
// (then checks it stops cleanly) and waits until its gRPC health says SERVING.
// kafkaEnv holds the ORDERSYS_KAFKA_* variables of the broker (nil: the shared one).
func serveProjector(t *testing.T, keyspace string, kafkaEnv map[string]string, orderTopic, customerTopic, grpcAddr, metricsAddr string) {
	t.Helper()
	if kafkaEnv == nil {
		kafkaEnv = map[string]string{"ORDERSYS_KAFKA_BROKERS": strings.Join(testinfra.KafkaBrokers(), ",")}
	}
	for k, v := range kafkaEnv {
		t.Setenv(k, v)
	}
	for k, v := range map[string]string{
		"ORDERSYS_CQL_HOSTS": strings.Join(testinfra.CQLHosts(), ","), "ORDERSYS_CQL_KEYSPACE": keyspace,
		"ORDERSYS_GRPC_ADDR": grpcAddr, "ORDERSYS_METRICS_ADDR": metricsAddr,
		"ORDERSYS_OTLP_ENDPOINT": "", "ORDERSYS_LOG_LEVEL": "warn", "ORDERSYS_PROJECTOR_GROUP": "cmdtest-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		"ORDERSYS_ORDER_TOPIC": orderTopic, "ORDERSYS_CUSTOMER_TOPIC": customerTopic,
		"ORDERSYS_KAFKA_PARTITIONS": "2", "ORDERSYS_PROJECTOR_RETIRE_GRACE": "1s",
	} {
		t.Setenv(k, v)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})

	conn, err := grpcx.ClientConn(grpcAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	health := healthpb.NewHealthClient(conn)
	waitFor(t, func() error {
		resp, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("health %s", resp.GetStatus())
		}
		return nil
	})
}

// publishOrder stores one OrderCreated in the event store and publishes it to topic as the relay
// would; it returns the order id.
func publishOrder(t *testing.T, s *gocql.Session, kc okafka.Cluster, topic string) string {
	t.Helper()
	reg := codec.NewRegistry()
	o := order.New(gocql.TimeUUID().String())
	envs := es.NewEnvelopes(o, []es.Event{order.OrderCreated{OrderID: o.AggregateID(), CustomerID: gocql.TimeUUID().String(),
		Items: []order.Item{{ProductID: gocql.TimeUUID().String(), Quantity: 1, UnitPriceCents: 100}}, TotalCents: 100}},
		es.Metadata{}, time.Now(), func() string { return gocql.TimeUUID().String() })
	if err := reg.EncodeEnvelope(&envs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := cql.NewEventStore(s, reg, cql.Options{}).Append(context.Background(), es.AppendRequest{
		AggregateID: o.AggregateID(), AggregateType: order.AggregateType, Events: envs}); err != nil {
		t.Fatal(err)
	}
	value, err := codec.MarshalEnvelope(envs[0])
	if err != nil {
		t.Fatal(err)
	}
	tr := kc.Transport()
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(kc.Brokers...), Transport: tr, Topic: topic, Balancer: &kafka.Hash{}}
	defer w.Close()
	if err := w.WriteMessages(context.Background(), kafka.Message{Key: []byte(o.AggregateID()), Value: value,
		Headers: []kafka.Header{{Key: "event_type", Value: []byte(order.EventOrderCreated)}}}); err != nil {
		t.Fatal(err)
	}
	return o.AggregateID()
}

// TestServeCreatesMissingTopicsBeforeConsuming starts the projector before any relay created its
// topics: it creates them with ORDERSYS_KAFKA_PARTITIONS partitions and retention.ms=-1 (the
// relay's spec) before its consumer groups
// join (a group joining a topic still being created may be left without partitions), and it
// projects what is published afterwards.
func TestServeCreatesMissingTopicsBeforeConsuming(t *testing.T) {
	testinfra.Require(t)
	s, ks := cqltest.Keyspace(t)
	brokers := testinfra.KafkaBrokers()
	orderTopic, customerTopic := testinfra.TopicName(t, "order-events"), testinfra.TopicName(t, "customer-events")
	t.Cleanup(func() {
		client := &kafka.Client{Addr: kafka.TCP(brokers...)}
		_, _ = client.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{orderTopic, customerTopic,
			orderTopic + ".projector.dlq", customerTopic + ".projector.dlq"}})
	})
	serveProjector(t, ks, nil, orderTopic, customerTopic, freeAddr(t), freeAddr(t))

	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	waitFor(t, func() error {
		md, err := client.Metadata(context.Background(), &kafka.MetadataRequest{Topics: []string{orderTopic, customerTopic}})
		if err != nil {
			return err
		}
		for _, tp := range md.Topics {
			if tp.Error != nil || len(tp.Partitions) != 2 {
				return fmt.Errorf("topic %s: %d partitions (%v), want 2", tp.Name, len(tp.Partitions), tp.Error)
			}
		}
		return nil
	})
	for _, topic := range []string{orderTopic, customerTopic} {
		got, err := okafka.TopicConfigs(context.Background(), okafka.Cluster{Brokers: brokers}, topic, okafka.ConfigRetentionMs)
		if err != nil || got[okafka.ConfigRetentionMs] != "604800000" {
			t.Errorf("topic %s: retention.ms %q (%v), want 604800000 (the relay's spec: 7 days)", topic, got[okafka.ConfigRetentionMs], err)
		}
	}

	id := publishOrder(t, s, okafka.Cluster{Brokers: brokers}, orderTopic)
	store := readmodel.NewStore(s, readmodel.Options{})
	waitFor(t, func() error {
		_, err := store.GetOrder(context.Background(), id)
		return err
	})
}

// TestServeOverSASLSSL runs `projector serve`, configured only through its ORDERSYS_KAFKA_*
// variables, against a private broker whose only listener is SASL_SSL (PLAIN over TLS): it
// creates its topics there, consumes in its consumer groups, projects what is published and
// writes a poison message to its dead-letter topic there.
func TestServeOverSASLSSL(t *testing.T) {
	testinfra.RequireCassandra(t)
	broker := kafkatest.StartSecure(t)
	s, ks := cqltest.Keyspace(t)
	serveProjector(t, ks, broker.Env(okafka.SASLPlain), "order-events", "customer-events", freeAddr(t), freeAddr(t))
	kc := broker.Cluster(okafka.SASLPlain)
	id := publishOrder(t, s, kc, "order-events")
	store := readmodel.NewStore(s, readmodel.Options{})
	waitFor(t, func() error {
		_, err := store.GetOrder(context.Background(), id)
		return err
	})

	pub := okafka.NewPublisher(okafka.PublisherConfig{Cluster: kc})
	defer pub.Close()
	if err := pub.Publish(context.Background(), []kafka.Message{{Topic: "order-events", Key: []byte(id), Value: []byte("not an envelope"),
		Headers: []kafka.Header{{Key: "event_type", Value: []byte(order.EventOrderCreated)}}}})[0]; err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() error {
		dl, err := okafka.ReadTopic(context.Background(), kc, "order-events.projector.dlq")
		if err == nil && len(dl) == 0 {
			err = errors.New("no dead letter yet")
		}
		return err
	})
}
