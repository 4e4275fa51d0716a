package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// TestE2E drives customers and orders through every status, with cancellations, conflicting
// concurrent updates, rule violations and repeated commands, through the command service; then
// checks that every read model of the query service converges to the state replayed from the
// event store, that one command's trace spans command, cdc-relay and projector in Jaeger, and that
// an outside Kafka consumer sees the events keyed, with headers, in order.
func TestE2E(t *testing.T) {
	s := getSystem(t)
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpLogs(t, 40)
		}
	})
	ctx := context.Background()
	d := &driver{t: t, s: s, ctx: ctx}

	// -------------------------------------------------------------------------------------
	// Customers

	type customerModel struct{ id, email, first, last, phone string }
	var customers []customerModel
	for i := range 3 {
		c := customerModel{id: ids.New(), email: fmt.Sprintf("e2e-%d-%s@example.com", i, randomHex(3)), first: "Ada", last: fmt.Sprintf("Tester%d", i), phone: fmt.Sprintf("+4420700000%02d", i)}
		cctx, cancel, _ := withCorr(ctx)
		resp, err := s.customers.RegisterCustomer(cctx, &ordersv1.RegisterCustomerRequest{CustomerId: c.id, Email: c.email, FirstName: c.first, LastName: c.last, Phone: c.phone})
		cancel()
		if err != nil {
			t.Fatalf("RegisterCustomer %d: %v", i, err)
		}
		if resp.GetVersion() != 1 {
			t.Fatalf("RegisterCustomer %s: version %d, want 1", c.id, resp.GetVersion())
		}
		customers = append(customers, c)
	}

	// -------------------------------------------------------------------------------------
	// Orders through every status. Per customer, one order per path:
	//   delivered:  create, update items, confirm, ship, deliver
	//   cancelled from CREATED, from CONFIRMED and from SHIPPED
	//   left CONFIRMED, left SHIPPED, left CREATED after the concurrent updates

	var all []*orderModel
	byPath := map[string][]*orderModel{}
	for ci, c := range customers {
		for pi, path := range []string{"delivered", "cancel-created", "cancel-confirmed", "cancel-shipped", "confirmed", "shipped", "raced"} {
			m := &orderModel{id: ids.New(), customer: c.id}
			d.create(m, ci*10+pi)
			switch path {
			case "delivered":
				d.update(m, ci*10+pi+100)
				d.confirm(m)
				d.ship(m)
				d.deliver(m)
			case "cancel-created":
				d.cancel(m)
			case "cancel-confirmed":
				d.confirm(m)
				d.cancel(m)
			case "cancel-shipped":
				d.confirm(m)
				d.ship(m)
				d.cancel(m)
			case "confirmed":
				d.confirm(m)
			case "shipped":
				d.confirm(m)
				d.ship(m)
			}
			all = append(all, m)
			byPath[path] = append(byPath[path], m)
		}
	}

	// -------------------------------------------------------------------------------------
	// Business rules and idempotency at the edge

	t.Run("rules", func(t *testing.T) {
		created, delivered, cancelled := byPath["raced"][0], byPath["delivered"][0], byPath["cancel-created"][0]
		cctx, cancel, _ := withCorr(ctx)
		defer cancel()
		_, err := s.orders.DeliverOrder(cctx, &ordersv1.DeliverOrderRequest{OrderId: created.id, Signature: "x"})
		wantCode(t, "DeliverOrder on a CREATED order", err, codes.FailedPrecondition)
		_, err = s.orders.CancelOrder(cctx, &ordersv1.CancelOrderRequest{OrderId: delivered.id, Reason: "too late"})
		wantCode(t, "CancelOrder on a DELIVERED order", err, codes.FailedPrecondition)
		_, err = s.orders.CancelOrder(cctx, &ordersv1.CancelOrderRequest{OrderId: cancelled.id, Reason: "again"})
		wantCode(t, "CancelOrder on a CANCELLED order", err, codes.FailedPrecondition)
		_, err = s.orders.ConfirmOrder(cctx, &ordersv1.ConfirmOrderRequest{OrderId: ids.New()})
		wantCode(t, "ConfirmOrder on an unknown order", err, codes.NotFound)
		_, err = s.orders.CreateOrder(cctx, &ordersv1.CreateOrderRequest{OrderId: "not-a-uuid", CustomerId: customers[0].id, Items: items(1)})
		wantCode(t, "CreateOrder with a bad order id", err, codes.InvalidArgument)
		stale := created.version - 1
		_, err = s.orders.UpdateOrderItems(cctx, &ordersv1.UpdateOrderItemsRequest{OrderId: created.id, Items: items(999), ExpectedVersion: &stale})
		wantCode(t, "UpdateOrderItems with a stale expected_version", err, codes.Aborted)
	})

	// A repeated command (same command_id) returns the first outcome and appends nothing.
	t.Run("idempotent_command", func(t *testing.T) {
		m := &orderModel{id: ids.New(), customer: customers[0].id}
		d := &driver{t: t, s: s, ctx: ctx}
		d.create(m, 42)
		cmdID := ids.New()
		var versions []int64
		var corr string
		for range 3 {
			cctx, cancel, c := withCorr(ctx)
			resp, err := s.orders.ConfirmOrder(cctx, &ordersv1.ConfirmOrderRequest{OrderId: m.id, CommandId: cmdID})
			cancel()
			if err != nil {
				t.Fatalf("ConfirmOrder with command_id %s: %v", cmdID, err)
			}
			if corr == "" {
				corr = c
			}
			versions = append(versions, resp.GetVersion())
		}
		if versions[0] != 2 || versions[1] != 2 || versions[2] != 2 {
			t.Errorf("ConfirmOrder repeated with one command_id: versions %v, want [2 2 2]", versions)
		}
		m.status = ordersv1.OrderStatus_ORDER_STATUS_CONFIRMED
		d.must(m.applied(versions[0], "OrderConfirmed", corr))
		all = append(all, m)
	})

	// -------------------------------------------------------------------------------------
	// Conflicting concurrent updates

	t.Run("concurrent_updates", func(t *testing.T) {
		d := &driver{t: t, s: s, ctx: ctx}
		const n = 6
		for i, m := range byPath["raced"] {
			// All with the same expected_version: exactly one wins, the others are ABORTED.
			res := d.concurrentUpdates(m, n, true, 1000+100*i)
			won := 0
			for _, r := range res {
				switch {
				case r.err == nil:
					won++
				case status.Code(r.err) != codes.Aborted:
					t.Errorf("order %s: concurrent update with expected_version: %v, want OK or ABORTED", m.id, r.err)
				}
			}
			if won != 1 {
				t.Errorf("order %s: %d of %d updates with one expected_version succeeded, want exactly 1", m.id, won, n)
			}
			// Without expected_version the server retries lost races: every one that succeeds has
			// its own version; one that still loses after the bounded retries is ABORTED.
			res = d.concurrentUpdates(m, n, false, 2000+100*i)
			won, aborted := 0, 0
			for _, r := range res {
				switch {
				case r.err == nil:
					won++
				case status.Code(r.err) == codes.Aborted:
					aborted++
				default:
					t.Errorf("order %s: concurrent update without expected_version: %v, want OK or ABORTED", m.id, r.err)
				}
			}
			if won == 0 {
				t.Errorf("order %s: none of %d concurrent updates without expected_version succeeded", m.id, n)
			}
			t.Logf("order %s: %d concurrent updates without expected_version: %d succeeded (server retried), %d ABORTED after the retries", m.id, n, won, aborted)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	// -------------------------------------------------------------------------------------
	// The trace of one command (sent with a traceparent chosen here, so its trace id is known)

	traced := &orderModel{id: ids.New(), customer: customers[1].id}
	traceID := randomHex(16)
	tracedCorr := ""
	{
		it := items(77)
		cctx, cancel, corr := withCorr(ctx, mdTraceParent, fmt.Sprintf("00-%s-%s-01", traceID, randomHex(8)))
		var header metadata.MD
		resp, err := s.orders.CreateOrder(cctx, &ordersv1.CreateOrderRequest{OrderId: traced.id, CustomerId: traced.customer, Items: it}, grpc.Header(&header))
		cancel()
		if err != nil {
			t.Fatalf("CreateOrder (traced): %v", err)
		}
		if got := header.Get(mdCorrelationID); len(got) != 1 || got[0] != corr {
			t.Errorf("CreateOrder response header %s = %v, want [%s]", mdCorrelationID, got, corr)
		}
		traced.status, traced.items, traced.total = ordersv1.OrderStatus_ORDER_STATUS_CREATED, it, total(it)
		d.must(traced.applied(resp.GetVersion(), "OrderCreated", corr))
		tracedCorr = corr
		all = append(all, traced)
	}

	// -------------------------------------------------------------------------------------
	// Read models converge to the state replayed from the event store

	t.Run("read_your_writes_and_replay", func(t *testing.T) {
		for _, m := range all {
			checkOrder(t, s, m)
		}
	})

	t.Run("lists", func(t *testing.T) {
		byCustomer := map[string][]*orderModel{}
		byStatus := map[ordersv1.OrderStatus][]*orderModel{}
		for _, m := range all {
			byCustomer[m.customer] = append(byCustomer[m.customer], m)
			byStatus[m.status] = append(byStatus[m.status], m)
		}
		for _, c := range customers {
			want := byCustomer[c.id]
			err := eventually(convergeTimeout, pollEvery, func() error {
				got, err := listAll(ctx, func(ctx context.Context, token string) ([]*ordersv1.Order, string, error) {
					r, err := s.query.ListOrdersByCustomer(ctx, &ordersv1.ListOrdersByCustomerRequest{CustomerId: c.id, PageSize: 4, PageToken: token})
					return r.GetOrders(), r.GetNextPageToken(), err
				})
				if err != nil {
					return err
				}
				if err := sameOrders(got, want, nil); err != nil {
					return err
				}
				for i := 1; i < len(got); i++ { // newest first
					if got[i-1].GetCreatedAt().AsTime().Before(got[i].GetCreatedAt().AsTime()) {
						return fmt.Errorf("not newest first: %s (created %v) before %s (created %v)", got[i-1].GetOrderId(), got[i-1].GetCreatedAt().AsTime(), got[i].GetOrderId(), got[i].GetCreatedAt().AsTime())
					}
				}
				return nil
			})
			if err != nil {
				t.Errorf("ListOrdersByCustomer %s: %v", c.id, err)
			}
		}
		ours := map[string]bool{}
		for _, m := range all {
			ours[m.id] = true
		}
		for st := ordersv1.OrderStatus_ORDER_STATUS_CREATED; st <= ordersv1.OrderStatus_ORDER_STATUS_CANCELLED; st++ {
			want := byStatus[st]
			err := eventually(convergeTimeout, pollEvery, func() error {
				got, err := listAll(ctx, func(ctx context.Context, token string) ([]*ordersv1.Order, string, error) {
					r, err := s.query.ListOrdersByStatus(ctx, &ordersv1.ListOrdersByStatusRequest{Status: st, PageSize: 50, PageToken: token})
					return r.GetOrders(), r.GetNextPageToken(), err
				})
				if err != nil {
					return err
				}
				return sameOrders(got, want, ours)
			})
			if err != nil {
				t.Errorf("ListOrdersByStatus %s: %v", st, err)
			}
		}
	})

	t.Run("customers", func(t *testing.T) {
		for _, c := range customers {
			err := eventually(convergeTimeout, pollEvery, func() error {
				cctx, cancel := context.WithTimeout(ctx, callTimeout)
				defer cancel()
				r, err := s.custQuery.GetCustomer(cctx, &ordersv1.GetCustomerRequest{CustomerId: c.id})
				if status.Code(err) == codes.NotFound {
					return fmt.Errorf("%w: %v", errNotYet, err)
				}
				if err != nil {
					return err
				}
				got := r.GetCustomer()
				if got.GetVersion() != 1 || got.GetEmail() != c.email || got.GetFirstName() != c.first || got.GetLastName() != c.last || got.GetPhone() != c.phone {
					return fmt.Errorf("got %v, want version 1, %s, %s %s, %s", got, c.email, c.first, c.last, c.phone)
				}
				return nil
			})
			if err != nil {
				t.Errorf("GetCustomer %s: %v", c.id, err)
			}
		}
	})

	// -------------------------------------------------------------------------------------
	// Kafka as an outside consumer sees it (kcat)

	t.Run("kafka_kcat", func(t *testing.T) {
		keys := map[string]bool{}
		models := map[string]*orderModel{}
		for _, m := range all {
			keys[m.id], models[m.id] = true, m
		}
		var recs []kcatRecord
		err := eventually(convergeTimeout, time.Second, func() error {
			var err error
			if recs, err = s.kcatRead(s.topics["Order"], keys); err != nil {
				return err
			}
			seen := map[string]map[string]bool{}
			for _, r := range recs {
				if seen[r.Key] == nil {
					seen[r.Key] = map[string]bool{}
				}
				seen[r.Key][r.Headers["sequence"]] = true
			}
			for _, m := range all {
				if int64(len(seen[m.id])) < m.version {
					return fmt.Errorf("%w: order %s: %d of %d events on %s", errNotYet, m.id, len(seen[m.id]), m.version, s.topics["Order"])
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("kcat %s: %v", s.topics["Order"], err)
		}
		checkRecords(t, recs, models, traced.id, traceID)

		ckeys := map[string]bool{}
		for _, c := range customers {
			ckeys[c.id] = true
		}
		err = eventually(convergeTimeout, time.Second, func() error {
			crecs, err := s.kcatRead(s.topics["Customer"], ckeys)
			if err != nil {
				return err
			}
			got := map[string]bool{}
			for _, r := range crecs {
				if r.Headers["aggregate_type"] != "Customer" || r.Headers["event_type"] != "CustomerRegistered" || r.Headers["sequence"] != "1" {
					return fmt.Errorf("customer record %+v: want aggregate_type Customer, event_type CustomerRegistered, sequence 1", r)
				}
				got[r.Key] = true
			}
			if len(got) != len(customers) {
				return fmt.Errorf("%w: %d of %d customers on %s", errNotYet, len(got), len(customers), s.topics["Customer"])
			}
			return nil
		})
		if err != nil {
			t.Errorf("kcat %s: %v", s.topics["Customer"], err)
		}
	})

	// -------------------------------------------------------------------------------------
	// One trace across command, cdc-relay and projector (Jaeger query API)

	t.Run("jaeger_trace", func(t *testing.T) {
		if s.jaeger == nil {
			if tracingRequired() {
				t.Fatalf("CI=%s requires the tracing check: %s", os.Getenv("CI"), s.jaegerSkip)
			}
			t.Skip(s.jaegerSkip)
		}
		want := []string{"command", "cdc-relay", "projector"}
		var tr jaegerTrace
		err := eventually(convergeTimeout, time.Second, func() error {
			traces, err := s.jaegerGet("/api/traces/"+traceID, nil)
			if err != nil {
				return err
			}
			if len(traces) == 0 {
				return fmt.Errorf("%w: trace %s not in Jaeger yet", errNotYet, traceID)
			}
			tr = traces[0]
			svcs := tr.services()
			for _, w := range want {
				if len(svcs[w]) == 0 {
					return fmt.Errorf("%w: trace %s has spans of %v, none of %s yet", errNotYet, traceID, keysOf(svcs), w)
				}
			}
			// Each service tags a span of the command's trace with its correlation id (command:
			// the gRPC server span; cdc-relay: the publish span; projector: the process span).
			tagged := tr.tagged("correlation_id", tracedCorr)
			for _, w := range want {
				if len(tagged[w]) == 0 {
					return fmt.Errorf("%w: no span of %s in trace %s carries tag correlation_id=%s (spans of %s: %v; tagged: %v)",
						errNotYet, w, traceID, tracedCorr, w, svcs[w], tagged)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("trace of CreateOrder %s: %v", traced.id, err)
		}
		t.Logf("trace %s: %d spans: %v", traceID, len(tr.Spans), tr.services())
		tagged := tr.tagged("correlation_id", tracedCorr)
		t.Logf("spans with correlation_id=%s: %v", tracedCorr, tagged)
		// The correlation id finds the trace through Jaeger's tag search too.
		tags, _ := json.Marshal(map[string]string{"correlation_id": tracedCorr})
		for svc := range tagged {
			found, err := s.jaegerGet("/api/traces", url.Values{"service": {svc}, "tags": {string(tags)}, "lookback": {"1h"}, "limit": {"20"}})
			if err != nil {
				t.Errorf("Jaeger search service=%s tags=%s: %v", svc, tags, err)
				continue
			}
			if !slices.ContainsFunc(found, func(x jaegerTrace) bool { return x.TraceID == traceID }) {
				t.Errorf("Jaeger search service=%s tags=%s: %d traces, not %s", svc, tags, len(found), traceID)
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		for _, name := range serviceNames {
			page, err := s.metrics(name)
			if err != nil {
				t.Errorf("%s metrics: %v", name, err)
				continue
			}
			if !strings.Contains(page, "# TYPE ") {
				t.Errorf("%s /metrics has no metric families", name)
			}
		}
	})

	s.checkAlive(t)
}
