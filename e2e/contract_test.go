package e2e_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/ordersys/ordersys/pkg/protorules"
)

// TestEdgeContract replays, against the four running services, what an outside client found:
// an order with the nil UUID was acknowledged five times and never reached the topic. Now the
// edge refuses it with the field; the edge's other refusals (unregistered or suspended customer,
// a price past the limit, a cancellation without a reason) are the documented ones; and the
// largest order the rules allow, sent with upper-case ids, travels through the relay and the
// projector into GetOrder with no event dead-lettered anywhere.
func TestEdgeContract(t *testing.T) {
	s := getSystem(t)
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpLogs(t, 40)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	register := func() string {
		id := ids.New()
		if _, err := s.customers.RegisterCustomer(ctx, &ordersv1.RegisterCustomerRequest{CustomerId: id,
			Email: "contract-" + id[:8] + "@example.com", FirstName: "Con", LastName: "Tract"}); err != nil {
			t.Fatalf("RegisterCustomer: %v", err)
		}
		return id
	}
	active := register()

	// The nil UUID, as the outside client sent it: refused at the edge, naming the field.
	_, err := s.orders.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: ids.Nil, CustomerId: active, Items: items(1)})
	wantField(t, "CreateOrder with the nil order id", err, "order_id")
	_, err = s.orders.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: ids.New(), CustomerId: ids.Nil, Items: items(1)})
	wantField(t, "CreateOrder with the nil customer id", err, "customer_id")
	_, err = s.orders.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: ids.New(), CustomerId: active,
		Items: []*ordersv1.OrderItem{{ProductId: ids.New(), Quantity: 1, UnitPriceCents: 1<<63 - 1}}})
	wantField(t, "CreateOrder with a unit price of 2^63-1", err, "items[0].unit_price_cents")

	// Orders belong to registered, active customers.
	unknown := ids.New()
	_, err = s.orders.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: ids.New(), CustomerId: unknown, Items: items(1)})
	wantRule(t, "CreateOrder for an unregistered customer", err, order.RuleCreateCustomerExists, unknown)
	suspended := register()
	if _, err := s.customers.SuspendCustomer(ctx, &ordersv1.SuspendCustomerRequest{CustomerId: suspended, Reason: "fraud check"}); err != nil {
		t.Fatalf("SuspendCustomer: %v", err)
	}
	_, err = s.orders.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: ids.New(), CustomerId: suspended, Items: items(1)})
	wantRule(t, "CreateOrder for a customer suspended a moment before", err, order.RuleCreateCustomerActive, suspended)

	// The largest order the rules allow, with upper-case ids, through every service.
	id := ids.New()
	var lines []*ordersv1.OrderItem
	for range order.MaxItems {
		lines = append(lines, &ordersv1.OrderItem{ProductId: strings.ToUpper(ids.New()), Quantity: order.MaxQuantity, UnitPriceCents: order.MaxUnitPriceCents})
	}
	created, err := s.orders.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: strings.ToUpper(id), CustomerId: strings.ToUpper(active), Items: lines})
	if err != nil {
		t.Fatalf("CreateOrder, largest order: %v", err)
	}
	if created.GetAggregateId() != id {
		t.Fatalf("CreateOrder answered aggregate id %q, want the canonical %q", created.GetAggregateId(), id)
	}
	_, err = s.orders.CancelOrder(ctx, &ordersv1.CancelOrderRequest{OrderId: id, Reason: "  "})
	wantField(t, "CancelOrder without a reason", err, "reason")
	if _, err := s.orders.CancelOrder(ctx, &ordersv1.CancelOrderRequest{OrderId: id, Reason: strings.Repeat("é", order.MaxReasonLen)}); err != nil {
		t.Fatalf("CancelOrder with the longest reason: %v", err)
	}
	got, err := s.query.GetOrder(ctx, &ordersv1.GetOrderRequest{OrderId: strings.ToUpper(id), MinVersion: ptr(int64(2))})
	if err != nil {
		t.Fatalf("GetOrder min_version 2: %v (the events did not reach the read model)", err)
	}
	if o := got.GetOrder(); o.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_CANCELLED || o.GetTotalCents() != order.MaxTotalCents || len(o.GetItems()) != order.MaxItems {
		t.Fatalf("GetOrder: %v, want CANCELLED with %d items totalling %d", o, order.MaxItems, int64(order.MaxTotalCents))
	}

	// Nothing was found undecodable downstream, and both say so on their health service.
	for _, name := range []string{"cdc-relay", "projector"} {
		text, err := s.metrics(name)
		if err != nil {
			t.Fatal(err)
		}
		if n, series := undecodable(text); series == 0 || n != 0 {
			t.Errorf("%s: %v undecodable events in %d series (want 0, in at least one series)", name, n, series)
		}
		conn, err := s.dial(s.grpcAddr[name])
		if err != nil {
			t.Fatal(err)
		}
		hr, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: grpcx.HealthServiceDecoding})
		_ = conn.Close()
		if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("%s health %q: %v %v, want SERVING", name, grpcx.HealthServiceDecoding, hr.GetStatus(), err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

var reUndecodable = regexp.MustCompile(`(?m)^ordersys_\w+_undecodable_events_total\{[^}]*\} (\S+)$`)

// undecodable sums the undecodable_events_total samples of a /metrics page and counts them.
func undecodable(text string) (sum float64, series int) {
	for _, m := range reUndecodable.FindAllStringSubmatch(text, -1) {
		var v float64
		if _, err := fmt.Sscan(m[1], &v); err == nil {
			sum += v
			series++
		}
	}
	return sum, series
}

// wantField checks err is InvalidArgument with a BadRequest violation of field.
func wantField(t *testing.T, what string, err error, field string) {
	t.Helper()
	paths, invalid := protorules.FieldViolations(err)
	switch {
	case !invalid:
		t.Errorf("%s: %v, want InvalidArgument", what, err)
	case !slices.Contains(paths, field):
		t.Errorf("%s: %v names no violation of %s", what, err, field)
	}
}

// wantRule checks err is FailedPrecondition with a PreconditionFailure of rule about subject.
func wantRule(t *testing.T, what string, err error, rule, subject string) {
	t.Helper()
	st := status.Convert(err)
	for _, d := range st.Details() {
		if pf, ok := d.(*errdetails.PreconditionFailure); ok && len(pf.GetViolations()) == 1 &&
			pf.GetViolations()[0].GetType() == rule && pf.GetViolations()[0].GetSubject() == subject {
			return
		}
	}
	t.Errorf("%s: %v, want FailedPrecondition %s about %s", what, err, rule, subject)
}
