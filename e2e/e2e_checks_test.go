package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

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
