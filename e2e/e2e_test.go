package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// Metadata keys of the command service (API.md, services/command/internal/grpcapi).
const (
	mdCorrelationID = "x-correlation-id"
	mdTraceParent   = "traceparent"
)

// Time limits of the checks; generous for a loaded 2-core machine.
const (
	callTimeout     = 30 * time.Second
	convergeTimeout = 60 * time.Second
	pollEvery       = 200 * time.Millisecond
)

// orderModel is what the test expects of one order, built from the acknowledged commands only.
type orderModel struct {
	id, customer      string
	status            ordersv1.OrderStatus
	items             []*ordersv1.OrderItem
	total             int64
	tracking, carrier string
	version           int64
	types             []string               // event type of each sequence (index = sequence-1)
	corr              []string               // correlation id sent with the command of each sequence
	statusAt          []ordersv1.OrderStatus // status after each sequence
}

func (m *orderModel) applied(version int64, eventType, corr string) error {
	if version != m.version+1 {
		return fmt.Errorf("order %s: %s acknowledged version %d, want %d", m.id, eventType, version, m.version+1)
	}
	m.version = version
	m.types = append(m.types, eventType)
	m.corr = append(m.corr, corr)
	m.statusAt = append(m.statusAt, m.status)
	return nil
}

func items(seed int) []*ordersv1.OrderItem {
	// Product ids are UUIDs (the domain validates them); derived from seed so items differ per seed.
	out := []*ordersv1.OrderItem{{ProductId: fmt.Sprintf("00000000-0000-4000-8000-%012d", seed), Quantity: int32(1 + seed%3), UnitPriceCents: int64(100 + 7*seed)}}
	if seed%2 == 0 {
		out = append(out, &ordersv1.OrderItem{ProductId: fmt.Sprintf("00000000-0000-4000-9000-%012d", seed), Quantity: 2, UnitPriceCents: 999})
	}
	return out
}

func total(items []*ordersv1.OrderItem) int64 {
	var t int64
	for _, it := range items {
		t += int64(it.GetQuantity()) * it.GetUnitPriceCents()
	}
	return t
}

// withCorr returns ctx with a call deadline and a fresh correlation id in the request metadata.
func withCorr(ctx context.Context, extra ...string) (context.Context, context.CancelFunc, string) {
	corr := "e2e-" + randomHex(8)
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	return metadata.AppendToOutgoingContext(ctx, append([]string{mdCorrelationID, corr}, extra...)...), cancel, corr
}

// driver sends commands and keeps the models in step with what was acknowledged.
type driver struct {
	t   *testing.T
	s   *system
	ctx context.Context
}

func (d *driver) create(m *orderModel, seed int) {
	d.t.Helper()
	it := items(seed)
	ctx, cancel, corr := withCorr(d.ctx)
	defer cancel()
	resp, err := d.s.orders.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: m.id, CustomerId: m.customer, Items: it})
	if err != nil {
		d.t.Fatalf("CreateOrder %s: %v", m.id, err)
	}
	if resp.GetAggregateId() != m.id || len(resp.GetEventIds()) != 1 {
		d.t.Fatalf("CreateOrder %s: response %v: want aggregate_id %s and one event id", m.id, resp, m.id)
	}
	m.status, m.items, m.total = ordersv1.OrderStatus_ORDER_STATUS_CREATED, it, total(it)
	d.must(m.applied(resp.GetVersion(), "OrderCreated", corr))
}

func (d *driver) update(m *orderModel, seed int) {
	d.t.Helper()
	it := items(seed)
	ctx, cancel, corr := withCorr(d.ctx)
	defer cancel()
	resp, err := d.s.orders.UpdateOrderItems(ctx, &ordersv1.UpdateOrderItemsRequest{OrderId: m.id, Items: it, Reason: "customer changed mind"})
	if err != nil {
		d.t.Fatalf("UpdateOrderItems %s: %v", m.id, err)
	}
	m.items, m.total = it, total(it)
	d.must(m.applied(resp.GetVersion(), "OrderItemsUpdated", corr))
}

func (d *driver) confirm(m *orderModel) {
	d.t.Helper()
	ctx, cancel, corr := withCorr(d.ctx)
	defer cancel()
	v := m.version
	resp, err := d.s.orders.ConfirmOrder(ctx, &ordersv1.ConfirmOrderRequest{OrderId: m.id, ExpectedVersion: &v})
	if err != nil {
		d.t.Fatalf("ConfirmOrder %s at version %d: %v", m.id, v, err)
	}
	m.status = ordersv1.OrderStatus_ORDER_STATUS_CONFIRMED
	d.must(m.applied(resp.GetVersion(), "OrderConfirmed", corr))
}

func (d *driver) ship(m *orderModel) {
	d.t.Helper()
	ctx, cancel, corr := withCorr(d.ctx)
	defer cancel()
	tracking, carrier := "TRK-"+strings.ToUpper(randomHex(4)), "DHL"
	resp, err := d.s.orders.ShipOrder(ctx, &ordersv1.ShipOrderRequest{OrderId: m.id, TrackingNumber: tracking, Carrier: carrier})
	if err != nil {
		d.t.Fatalf("ShipOrder %s: %v", m.id, err)
	}
	m.status, m.tracking, m.carrier = ordersv1.OrderStatus_ORDER_STATUS_SHIPPED, tracking, carrier
	d.must(m.applied(resp.GetVersion(), "OrderShipped", corr))
}

func (d *driver) deliver(m *orderModel) {
	d.t.Helper()
	ctx, cancel, corr := withCorr(d.ctx)
	defer cancel()
	resp, err := d.s.orders.DeliverOrder(ctx, &ordersv1.DeliverOrderRequest{OrderId: m.id, Signature: "A. Lovelace"})
	if err != nil {
		d.t.Fatalf("DeliverOrder %s: %v", m.id, err)
	}
	m.status = ordersv1.OrderStatus_ORDER_STATUS_DELIVERED
	d.must(m.applied(resp.GetVersion(), "OrderDelivered", corr))
}

func (d *driver) cancel(m *orderModel) {
	d.t.Helper()
	ctx, cancel, corr := withCorr(d.ctx)
	defer cancel()
	resp, err := d.s.orders.CancelOrder(ctx, &ordersv1.CancelOrderRequest{OrderId: m.id, Reason: "out of stock"})
	if err != nil {
		d.t.Fatalf("CancelOrder %s (%s): %v", m.id, m.status, err)
	}
	m.status = ordersv1.OrderStatus_ORDER_STATUS_CANCELLED
	d.must(m.applied(resp.GetVersion(), "OrderCancelled", corr))
}

func (d *driver) must(err error) {
	d.t.Helper()
	if err != nil {
		d.t.Fatal(err)
	}
}

// wantCode fails unless err is a gRPC status with code c.
func wantCode(t *testing.T, what string, err error, c codes.Code) {
	t.Helper()
	if status.Code(err) != c {
		t.Errorf("%s: got %v, want code %s", what, err, c)
	}
}

// updateResult is the outcome of one of the concurrent UpdateOrderItems.
type updateResult struct {
	seed    int
	corr    string
	version int64
	err     error
}

// concurrentUpdates fires n UpdateOrderItems at m at once, each with other items; with
// expected=true all carry expected_version = m.version (so exactly one may win), else none does
// (the server retries lost races). The model takes the acknowledged ones in version order.
func (d *driver) concurrentUpdates(m *orderModel, n int, expected bool, seedBase int) []updateResult {
	d.t.Helper()
	res := make([]updateResult, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	v := m.version
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel, corr := withCorr(d.ctx)
			defer cancel()
			req := &ordersv1.UpdateOrderItemsRequest{OrderId: m.id, Items: items(seedBase + i), Reason: fmt.Sprintf("race %d", i)}
			if expected {
				req.ExpectedVersion = &v
			}
			<-start
			resp, err := d.s.orders.UpdateOrderItems(ctx, req)
			res[i] = updateResult{seed: seedBase + i, corr: corr, version: resp.GetVersion(), err: err}
		}()
	}
	close(start)
	wg.Wait()
	ok := slices.DeleteFunc(slices.Clone(res), func(r updateResult) bool { return r.err != nil })
	sort.Slice(ok, func(i, j int) bool { return ok[i].version < ok[j].version })
	for _, r := range ok {
		m.items, m.total = items(r.seed), total(items(r.seed))
		d.must(m.applied(r.version, "OrderItemsUpdated", r.corr))
	}
	return res
}

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

// checkOrder reads m with read-your-writes (min_version), compares it with the model and with the
// state replayed from the event store (GetOrderAt), at the last version and at every earlier one,
// and checks its history.
func checkOrder(t *testing.T, s *system, m *orderModel) {
	t.Helper()
	ctx := context.Background()
	cctx, cancel := context.WithTimeout(ctx, convergeTimeout+callTimeout)
	defer cancel()
	v := m.version
	// The query service waits for min_version up to its ORDERSYS_QUERY_MAX_WAIT (10s) and then
	// answers DEADLINE_EXCEEDED; on a loaded machine the projection may need longer, so ask again.
	var got *ordersv1.GetOrderResponse
	tries := 0
	err := eventually(convergeTimeout, pollEvery, func() error {
		tries++
		var err error
		got, err = s.query.GetOrder(cctx, &ordersv1.GetOrderRequest{OrderId: m.id, MinVersion: &v})
		return err
	})
	if err != nil {
		t.Errorf("GetOrder %s min_version %d (%d tries): %v", m.id, v, tries, err)
		return
	}
	if tries > 1 {
		t.Logf("GetOrder %s min_version %d answered on try %d", m.id, v, tries)
	}
	if err := matches(got.GetOrder(), m); err != nil {
		t.Errorf("GetOrder %s (read model): %v", m.id, err)
	}
	at, err := s.query.GetOrderAt(cctx, &ordersv1.GetOrderAtRequest{OrderId: m.id, Point: &ordersv1.GetOrderAtRequest_Version{Version: v}})
	if err != nil {
		t.Errorf("GetOrderAt %s version %d: %v", m.id, v, err)
		return
	}
	if err := matches(at.GetOrder(), m); err != nil {
		t.Errorf("GetOrderAt %s version %d (replayed): %v", m.id, v, err)
	}
	if err := sameState(got.GetOrder(), at.GetOrder()); err != nil {
		t.Errorf("order %s: read model and replay differ: %v", m.id, err)
	}
	for ver := int64(1); ver < v; ver++ {
		old, err := s.query.GetOrderAt(cctx, &ordersv1.GetOrderAtRequest{OrderId: m.id, Point: &ordersv1.GetOrderAtRequest_Version{Version: ver}})
		if err != nil {
			t.Errorf("GetOrderAt %s version %d: %v", m.id, ver, err)
			continue
		}
		if old.GetOrder().GetVersion() != ver || old.GetOrder().GetStatus() != m.statusAt[ver-1] {
			t.Errorf("GetOrderAt %s version %d: version %d status %s, want %s", m.id, ver, old.GetOrder().GetVersion(), old.GetOrder().GetStatus(), m.statusAt[ver-1])
		}
	}
	h, err := s.query.GetOrderHistory(cctx, &ordersv1.GetOrderHistoryRequest{OrderId: m.id})
	if err != nil {
		t.Errorf("GetOrderHistory %s: %v", m.id, err)
		return
	}
	if int64(len(h.GetEvents())) != v {
		t.Errorf("GetOrderHistory %s: %d events, want %d", m.id, len(h.GetEvents()), v)
		return
	}
	for i, e := range h.GetEvents() {
		if e.GetSequence() != int64(i+1) || e.GetEventType() != m.types[i] || e.GetCorrelationId() != m.corr[i] || e.GetCausationId() == "" || !json.Valid([]byte(e.GetPayloadJson())) {
			t.Errorf("GetOrderHistory %s event %d: sequence %d type %s correlation %q causation %q payload valid %v; want sequence %d type %s correlation %q",
				m.id, i, e.GetSequence(), e.GetEventType(), e.GetCorrelationId(), e.GetCausationId(), json.Valid([]byte(e.GetPayloadJson())), i+1, m.types[i], m.corr[i])
		}
	}
}

// matches compares an order read from the query service with the model.
func matches(o *ordersv1.Order, m *orderModel) error {
	var diffs []string
	if o.GetOrderId() != m.id {
		diffs = append(diffs, fmt.Sprintf("order_id %q", o.GetOrderId()))
	}
	if o.GetCustomerId() != m.customer {
		diffs = append(diffs, fmt.Sprintf("customer_id %q want %q", o.GetCustomerId(), m.customer))
	}
	if o.GetVersion() != m.version {
		diffs = append(diffs, fmt.Sprintf("version %d want %d", o.GetVersion(), m.version))
	}
	if o.GetStatus() != m.status {
		diffs = append(diffs, fmt.Sprintf("status %s want %s", o.GetStatus(), m.status))
	}
	if o.GetTotalCents() != m.total {
		diffs = append(diffs, fmt.Sprintf("total_cents %d want %d", o.GetTotalCents(), m.total))
	}
	if !sameItems(o.GetItems(), m.items) {
		diffs = append(diffs, fmt.Sprintf("items %v want %v", o.GetItems(), m.items))
	}
	if o.GetTrackingNumber() != m.tracking || o.GetCarrier() != m.carrier {
		diffs = append(diffs, fmt.Sprintf("tracking %q/%q want %q/%q", o.GetTrackingNumber(), o.GetCarrier(), m.tracking, m.carrier))
	}
	if len(diffs) > 0 {
		return errors.New(strings.Join(diffs, "; "))
	}
	return nil
}

// sameState compares the fields both the read model and the replay hold.
func sameState(a, b *ordersv1.Order) error {
	if a.GetVersion() != b.GetVersion() || a.GetStatus() != b.GetStatus() || a.GetTotalCents() != b.GetTotalCents() ||
		!sameItems(a.GetItems(), b.GetItems()) || a.GetTrackingNumber() != b.GetTrackingNumber() || a.GetCarrier() != b.GetCarrier() ||
		a.GetCustomerId() != b.GetCustomerId() || a.GetCancelReason() != b.GetCancelReason() || a.GetDeliverySignature() != b.GetDeliverySignature() ||
		!a.GetCreatedAt().AsTime().Equal(b.GetCreatedAt().AsTime()) || !a.GetUpdatedAt().AsTime().Equal(b.GetUpdatedAt().AsTime()) {
		return fmt.Errorf("read model %v\n replay %v", a, b)
	}
	return nil
}

func sameItems(a, b []*ordersv1.OrderItem) bool {
	return slices.EqualFunc(a, b, func(x, y *ordersv1.OrderItem) bool { return proto.Equal(x, y) })
}

// listAll follows next_page_token to the end.
func listAll(ctx context.Context, page func(context.Context, string) ([]*ordersv1.Order, string, error)) ([]*ordersv1.Order, error) {
	var out []*ordersv1.Order
	token := ""
	for range 10000 {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		got, next, err := page(cctx, token)
		cancel()
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
		if next == "" {
			return out, nil
		}
		token = next
	}
	return nil, errors.New("more than 10000 pages")
}

// sameOrders checks that got (restricted to the ids in only, unless nil) holds exactly the
// models' orders, each once, at the models' versions and statuses.
func sameOrders(got []*ordersv1.Order, want []*orderModel, only map[string]bool) error {
	seen := map[string]*ordersv1.Order{}
	for _, o := range got {
		if only != nil && !only[o.GetOrderId()] {
			continue
		}
		if seen[o.GetOrderId()] != nil {
			return fmt.Errorf("order %s listed twice", o.GetOrderId())
		}
		seen[o.GetOrderId()] = o
	}
	for _, m := range want {
		o := seen[m.id]
		if o == nil {
			return fmt.Errorf("%w: order %s (%s, version %d) missing", errNotYet, m.id, m.status, m.version)
		}
		if err := matches(o, m); err != nil {
			return fmt.Errorf("%w: order %s: %v", errNotYet, m.id, err)
		}
		delete(seen, m.id)
	}
	for id, o := range seen {
		return fmt.Errorf("order %s (%s, version %d) listed but not expected here", id, o.GetStatus(), o.GetVersion())
	}
	return nil
}

var traceParentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$`)

// checkRecords checks the records of the models' orders as kcat read them: key = aggregate id, the
// API.md headers, one partition per key, sequences 1..version in order (a duplicate, allowed by
// at-least-once delivery, must repeat an earlier sequence), and the traced order's traceparent.
func checkRecords(t *testing.T, recs []kcatRecord, models map[string]*orderModel, tracedID, traceID string) {
	t.Helper()
	partition := map[string]int{}
	next := map[string]int64{}
	dups := 0
	for _, r := range recs {
		m := models[r.Key]
		h := r.Headers
		for _, k := range []string{"event_id", "event_type", "event_version", "aggregate_type", "aggregate_id", "sequence", "correlation_id", "causation_id", "traceparent"} {
			if h[k] == "" {
				t.Errorf("record %s@%d/%d: header %s missing (headers %v)", r.Key, r.Partition, r.Offset, k, h)
			}
		}
		if h["aggregate_id"] != r.Key || h["aggregate_type"] != "Order" {
			t.Errorf("record %d/%d: key %s, aggregate_id %s, aggregate_type %s", r.Partition, r.Offset, r.Key, h["aggregate_id"], h["aggregate_type"])
		}
		if p, ok := partition[r.Key]; ok && p != r.Partition {
			t.Errorf("order %s on partitions %d and %d", r.Key, p, r.Partition)
		}
		partition[r.Key] = r.Partition
		seq, err := strconv.ParseInt(h["sequence"], 10, 64)
		if err != nil {
			t.Errorf("record %s@%d/%d: sequence %q", r.Key, r.Partition, r.Offset, h["sequence"])
			continue
		}
		if next[r.Key] == 0 {
			next[r.Key] = 1
		}
		switch {
		case seq == next[r.Key]:
			next[r.Key]++
		case seq < next[r.Key]:
			dups++
			continue
		default:
			t.Errorf("order %s: sequence %d at %d/%d, want %d (out of order or a gap)", r.Key, seq, r.Partition, r.Offset, next[r.Key])
			continue
		}
		if seq > int64(len(m.types)) {
			t.Errorf("order %s: sequence %d beyond the %d acknowledged events", r.Key, seq, len(m.types))
			continue
		}
		if h["event_type"] != m.types[seq-1] || h["correlation_id"] != m.corr[seq-1] {
			t.Errorf("order %s sequence %d: event_type %s correlation_id %s, want %s %s", r.Key, seq, h["event_type"], h["correlation_id"], m.types[seq-1], m.corr[seq-1])
		}
		tp := traceParentRE.FindStringSubmatch(h["traceparent"])
		if tp == nil {
			t.Errorf("order %s sequence %d: traceparent %q is not W3C", r.Key, seq, h["traceparent"])
		} else if r.Key == tracedID && seq == 1 && tp[1] != traceID {
			t.Errorf("traced order %s: traceparent %s, want trace id %s", r.Key, h["traceparent"], traceID)
		}
	}
	for id, m := range models {
		if next[id]-1 != m.version {
			t.Errorf("order %s: events 1..%d on the topic, want 1..%d", id, next[id]-1, m.version)
		}
	}
	t.Logf("kcat: %d records of %d orders on the run's order topic, %d duplicates", len(recs), len(models), dups)
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
