package e2e_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

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
