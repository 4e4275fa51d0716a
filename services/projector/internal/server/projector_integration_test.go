package server_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/services/projector/internal/app"
	"github.com/ordersys/ordersys/services/projector/internal/consumer"
)

// TestProjectsOrdersCustomersListsAndCustomerDetails runs the projector on real topics and checks
// every read model: rows, newest-first lists, status moves, customer details (including an order
// that arrives before its customer and a later name change), and the trace of a message.
func TestProjectsOrdersCustomersListsAndCustomerDetails(t *testing.T) {
	e := newEnv(t)
	ada, adaEvents := e.newCustomer("Ada", "Lovelace", "ada@example.com")
	o1, o1Events := e.newOrder(ada.AggregateID(), 2)
	o2, o2Events := e.newOrder(ada.AggregateID(), 1)
	o3, o3Events := e.newOrder(ada.AggregateID(), 3)
	o2Events = append(o2Events, e.append(o2, order.OrderConfirmed{})...)
	o2Events = append(o2Events, e.append(o2, order.OrderShipped{TrackingNumber: "TN-1", Carrier: "UPS"})...)

	// The orders arrive before their customer; o1 carries a trace context from "the command".
	traceID := trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	parent := "00-" + traceID.String() + "-00f067aa0ba902b7-01"
	e.write(message(t, e.orderTopic, o1Events[0], parent))
	e.publish(o2Events...)
	e.publish(o3Events...)
	_, stop := e.runSupervisor()

	e.orderAt(1, o2.AggregateID(), 3)
	e.publish(adaEvents...)

	tables := readmodel.NewOrderTables(e.s, 1)
	eventually(t, 60*time.Second, func() error {
		for _, o := range []*order.Order{o1, o2, o3} {
			got, err := tables.Get(e.ctx(), o.AggregateID())
			if err != nil {
				return err
			}
			if got.CustomerName != "Ada Lovelace" || got.CustomerEmail != "ada@example.com" {
				return fmt.Errorf("order %s: customer %q %q", o.AggregateID(), got.CustomerName, got.CustomerEmail)
			}
		}
		return nil
	})
	got := e.orderAt(1, o2.AggregateID(), 3)
	if got.State.Status != order.StatusShipped || got.State.TrackingNumber != "TN-1" || got.State.Carrier != "UPS" ||
		got.State.TotalCents != o2.TotalCents || !reflect.DeepEqual(got.State.Items, o2.Items) ||
		!got.State.CreatedAt.Equal(o2.CreatedAt) || !got.State.UpdatedAt.Equal(o2.UpdatedAt) {
		t.Fatalf("order row %+v\nwant %+v", got.State, o2)
	}

	// Newest first: o3, o2, o1.
	page, err := tables.ListByCustomer(e.ctx(), ada.AggregateID(), 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if ids := orderIDs(page.Orders); !reflect.DeepEqual(ids, []string{o3.AggregateID(), o2.AggregateID(), o1.AggregateID()}) {
		t.Fatalf("by customer %v", ids)
	}
	for _, o := range page.Orders {
		if o.CustomerName != "Ada Lovelace" {
			t.Fatalf("list row without customer name: %+v", o)
		}
	}
	// o2 moved CREATED → CONFIRMED → SHIPPED: listed only under SHIPPED.
	assertStatusList(t, tables, order.StatusCreated, o3.AggregateID(), o1.AggregateID())
	assertStatusList(t, tables, order.StatusConfirmed)
	assertStatusList(t, tables, order.StatusShipped, o2.AggregateID())

	// A name change reaches every order of the customer, in every table.
	e.publish(e.append(ada, customer.CustomerProfileUpdated{FirstName: "Ada", LastName: "King"})...)
	e.publish(e.append(o1, order.OrderCancelled{Reason: "changed mind"})...)
	eventually(t, 60*time.Second, func() error {
		for _, st := range []order.Status{order.StatusCreated, order.StatusShipped, order.StatusCancelled} {
			p, err := tables.ListByStatus(e.ctx(), st, 10, "")
			if err != nil {
				return err
			}
			for _, o := range p.Orders {
				if o.CustomerName != "Ada King" {
					return fmt.Errorf("%s list: order %s has customer %q", st, o.State.AggregateID(), o.CustomerName)
				}
			}
		}
		p, err := tables.ListByCustomer(e.ctx(), ada.AggregateID(), 10, "")
		if err != nil {
			return err
		}
		for _, o := range p.Orders {
			if o.CustomerName != "Ada King" {
				return fmt.Errorf("customer list: order %s has customer %q", o.State.AggregateID(), o.CustomerName)
			}
		}
		// The cancellation is projected on another partition than the name change: wait for
		// it too, not only for the rows already listed.
		if o, err := tables.Get(e.ctx(), o1.AggregateID()); err != nil || o.State.Status != order.StatusCancelled {
			return fmt.Errorf("order %s not cancelled yet (%v)", o1.AggregateID(), err)
		}
		return nil
	})
	assertStatusList(t, tables, order.StatusCancelled, o1.AggregateID())
	assertStatusList(t, tables, order.StatusCreated, o3.AggregateID())

	// The customers projection.
	eventually(t, 30*time.Second, func() error {
		c, err := readmodel.NewCustomerTables(e.s, 1).Get(e.ctx(), ada.AggregateID())
		if err != nil {
			return err
		}
		if c.Version() != 2 || c.LastName != "King" || c.Email != "ada@example.com" || c.Status != customer.StatusActive {
			return fmt.Errorf("customer row %+v", c)
		}
		return nil
	})
	stop()

	if n := metric(e.deps.Metrics.Applied, readmodel.ProjectionOrders, order.EventOrderCreated); n != 3 {
		t.Errorf("OrderCreated applied %v times, want 3", n)
	}

	// The span of o1's creation continues the command's trace and names the event.
	var found bool
	for _, s := range spans.Ended() {
		if s.SpanContext().TraceID() != traceID || !strings.Contains(s.Name(), "OrderCreated") {
			continue
		}
		attrs := map[string]string{}
		for _, a := range s.Attributes() {
			attrs[string(a.Key)] = a.Value.Emit()
		}
		if attrs["aggregate_id"] == o1.AggregateID() && attrs["sequence"] == "1" && attrs["correlation_id"] != "" &&
			attrs["event_type"] == order.EventOrderCreated && s.Parent().SpanID().String() == "00f067aa0ba902b7" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no projector span in trace %s for order %s", traceID, o1.AggregateID())
	}
}

func orderIDs(os []readmodel.Order) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = o.State.AggregateID()
	}
	return out
}

func assertStatusList(t *testing.T, tables readmodel.OrderTables, st order.Status, want ...string) {
	t.Helper()
	p, err := tables.ListByStatus(context.Background(), st, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if ids := orderIDs(p.Orders); !reflect.DeepEqual(ids, append([]string{}, want...)) && !(len(ids) == 0 && len(want) == 0) {
		t.Fatalf("%s lists %v, want %v", st, ids, want)
	}
}

// TestDuplicatesSkippedAndGapsHealed publishes duplicates and a gap (sequence 2 missing from
// the topic, present in the event store).
func TestDuplicatesSkippedAndGapsHealed(t *testing.T) {
	e := newEnv(t)
	custID := gocql.TimeUUID().String()
	dup, dupEvents := e.newOrder(custID, 1)
	dupEvents = append(dupEvents, e.append(dup, order.OrderConfirmed{})...)
	gap, gapEvents := e.newOrder(custID, 1)
	gapEvents = append(gapEvents, e.append(gap, order.OrderItemsUpdated{Items: []order.Item{{ProductID: gocql.TimeUUID().String(), Quantity: 9, UnitPriceCents: 100}}, TotalCents: 900})...)
	gapEvents = append(gapEvents, e.append(gap, order.OrderConfirmed{})...)

	e.publish(dupEvents[0], dupEvents[1], dupEvents[0], dupEvents[1], dupEvents[1])
	e.publish(gapEvents[0], gapEvents[2]) // sequence 2 never published
	_, stop := e.runSupervisor()

	e.orderAt(1, dup.AggregateID(), 2)
	got := e.orderAt(1, gap.AggregateID(), 3)
	if got.State.TotalCents != 900 || got.State.Items[0].Quantity != 9 || got.State.Status != order.StatusConfirmed {
		t.Fatalf("healed order %+v", got.State)
	}
	// The row reaches version 3 before the handler returns (it re-reads the customer after the
	// write) and its message is counted: wait for the counts, then stop.
	eventually(t, 10*time.Second, func() error {
		if n := metric(e.deps.Metrics.Duplicates, readmodel.ProjectionOrders); n != 3 {
			return fmt.Errorf("duplicates %v, want 3", n)
		}
		if n := metric(e.deps.Metrics.GapsHealed, readmodel.ProjectionOrders); n != 1 {
			return fmt.Errorf("gaps healed %v, want 1", n)
		}
		if n := metric(e.deps.Metrics.HealedEvents, readmodel.ProjectionOrders); n != 1 {
			return fmt.Errorf("healed events %v, want 1", n)
		}
		return nil
	})
	stop()
}

// TestPoisonGoesToDLQWithoutStallingOthers puts three poison messages ahead of good ones in
// the same partition.
func TestPoisonGoesToDLQWithoutStallingOthers(t *testing.T) {
	e := newEnv(t)
	e.w.Balancer = kafka.BalancerFunc(func(kafka.Message, ...int) int { return 0 })

	// Undecodable value.
	garbage := kafka.Message{Topic: e.orderTopic, Key: []byte(gocql.TimeUUID().String()), Value: []byte("not a protobuf envelope"),
		Headers: []kafka.Header{{Key: "event_type", Value: []byte("OrderCreated")}}}
	// Unknown event type.
	_, created := e.newOrder(gocql.TimeUUID().String(), 1)
	unknown := created[0]
	unknown.EventType, unknown.EventID = "OrderTeleported", gocql.TimeUUID().String()
	// An event the aggregate refuses: a stored history starting with OrderConfirmed.
	bad := order.New(gocql.TimeUUID().String())
	badEnvs := es.NewEnvelopes(bad, []es.Event{order.OrderConfirmed{}}, es.Metadata{}, e.tick(), func() string { return gocql.TimeUUID().String() })
	if err := e.reg.EncodeEnvelope(&badEnvs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Append(e.ctx(), es.AppendRequest{AggregateID: bad.AggregateID(), AggregateType: order.AggregateType, Events: badEnvs}); err != nil {
		t.Fatal(err)
	}
	good, goodEvents := e.newOrder(gocql.TimeUUID().String(), 1)
	goodEvents = append(goodEvents, e.append(good, order.OrderConfirmed{})...)

	e.write(garbage, message(t, e.orderTopic, unknown, ""), message(t, e.orderTopic, badEnvs[0], ""))
	e.publish(goodEvents...)
	hs, decodeReg := health.NewServer(), prometheus.NewRegistry()
	e.deps.Decode = grpcx.NewDecodeWatch(decodeReg, "ordersys_projector", hs, e.deps.Logger)
	_, stop := e.runSupervisor()

	e.orderAt(1, good.AggregateID(), 2)
	if _, err := readmodel.NewOrderTables(e.s, 1).Get(e.ctx(), bad.AggregateID()); !errors.Is(err, es.ErrNotFound) {
		t.Fatalf("refused order projected: %v", err)
	}
	// The good order says nothing of the poison in other partitions: stopping before their
	// dead letters are done cuts one short (published, not yet recorded; handled again at the
	// next start), as a CI run on 2026-12-01 did.
	eventually(t, 30*time.Second, func() error {
		for _, r := range []string{app.ReasonUndecodable, app.ReasonUnknownEvent, app.ReasonUnappliable} {
			if n := metric(e.deps.Metrics.DeadLetters, readmodel.ProjectionOrders, r); n < 1 {
				return fmt.Errorf("no dead letter %s done yet", r)
			}
		}
		return nil
	})
	stop()

	dlq := readAll(t, e.kafka.Brokers, consumer.DLQTopic(e.orderTopic), 3)
	reasons := map[string]bool{}
	for _, m := range dlq {
		reasons[headerOf(m, consumer.HeaderDLQReason)] = true
		if headerOf(m, consumer.HeaderDLQProjection) != readmodel.ProjectionOrders || headerOf(m, consumer.HeaderDLQSource) == "" {
			t.Errorf("dead letter headers %v", m.Headers)
		}
	}
	for _, r := range []string{app.ReasonUndecodable, app.ReasonUnknownEvent, app.ReasonUnappliable} {
		if !reasons[r] {
			t.Errorf("no dead letter with reason %s (got %v)", r, reasons)
		}
		if n := metric(e.deps.Metrics.DeadLetters, readmodel.ProjectionOrders, r); n != 1 {
			t.Errorf("dead letters %s = %v, want 1", r, n)
		}
	}
	var rows int
	if err := e.s.Query(`SELECT count(*) FROM dead_letters WHERE topic = ?`, consumer.DLQTopic(e.orderTopic)).Scan(&rows); err != nil || rows != 3 {
		t.Errorf("dead_letters rows %d, %v", rows, err)
	}
	// The two messages that could not be decoded are also counted as such and turn the
	// "ordersys.decoding" health NOT_SERVING; the refused (but decodable) event is not counted.
	if n, err := testutil.GatherAndCount(decodeReg, "ordersys_projector_undecodable_events_total"); err != nil || n != 2 {
		t.Errorf("undecodable_events_total series: %d, %v; want one per reason (undecodable, unknown_event)", n, err)
	}
	hr, err := hs.Check(e.ctx(), &healthpb.HealthCheckRequest{Service: grpcx.HealthServiceDecoding})
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health %q: %v %v, want NOT_SERVING", grpcx.HealthServiceDecoding, hr.GetStatus(), err)
	}
}

func headerOf(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// readAll reads n messages from every partition of a topic.
func readAll(t *testing.T, brokers []string, topic string, n int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, GroupID: "read-" + gocql.TimeUUID().String(), Topic: topic,
		StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []kafka.Message
	for len(out) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("read %s: got %d of %d messages: %v", topic, len(out), n, err)
		}
		out = append(out, m)
	}
	return out
}
