package order_test

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
)

const (
	orderID    = "0b6f4a3e-9c1d-4f2a-8e5b-1d2c3b4a5f60"
	customerID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	productA   = "a1a1a1a1-0000-4000-8000-000000000001"
	productB   = "b2b2b2b2-0000-4000-8000-000000000002"
	productC   = "c3c3c3c3-0000-4000-8000-000000000003"
)

// t0 is in a non-UTC zone on purpose: the state must hold UTC times however time is given.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))

func items() []order.Item {
	return []order.Item{
		{ProductID: productA, Quantity: 2, UnitPriceCents: 1250},
		{ProductID: productB, Quantity: 1, UnitPriceCents: 99},
	}
}

func createCmd() order.Create {
	return order.Create{Customer: order.CustomerActive, OrderID: orderID, CustomerID: customerID, Items: items()}
}

// harness drives one order the way the command service does: decide, wrap the events in
// envelopes, apply them. It keeps every envelope for the replay check.
type harness struct {
	t    *testing.T
	o    *order.Order
	envs []es.Envelope
	now  time.Time
}

func newHarness(t *testing.T) *harness {
	return &harness{t: t, o: order.New(orderID), now: t0}
}

// do decides cmd and applies its events directly (Apply + SetVersion), returning the events.
func (h *harness) do(cmd order.Command) ([]es.Event, error) {
	h.t.Helper()
	h.now = h.now.Add(time.Minute)
	evs, err := h.o.Decide(cmd, h.now)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		h.t.Fatalf("%T succeeded without an event", cmd)
	}
	h.envs = append(h.envs, es.NewEnvelopes(h.o, evs, es.Metadata{CausationID: ids.New()}, h.now, ids.New)...)
	for _, e := range evs {
		if err := h.o.Apply(e, h.now); err != nil {
			h.t.Fatalf("apply %s: %v", e.EventType(), err)
		}
		h.o.SetVersion(h.o.Version() + 1)
	}
	return evs, nil
}

func (h *harness) must(cmds ...order.Command) {
	h.t.Helper()
	for _, c := range cmds {
		if _, err := h.do(c); err != nil {
			h.t.Fatalf("%T: %v", c, err)
		}
	}
}

// replayed rebuilds the order from the recorded envelopes.
func (h *harness) replayed() *order.Order {
	h.t.Helper()
	r := order.New(orderID)
	if err := es.Replay(r, h.envs); err != nil {
		h.t.Fatalf("replay: %v", err)
	}
	return r
}

func (h *harness) checkReplay() {
	h.t.Helper()
	if r := h.replayed(); !reflect.DeepEqual(r, h.o) {
		h.t.Fatalf("replayed state differs\nreplayed: %+v\nreached:  %+v", r, h.o)
	}
}

// at returns an order driven to the given status.
func at(t *testing.T, s order.Status) *harness {
	t.Helper()
	h := newHarness(t)
	h.must(createCmd())
	switch s {
	case order.StatusConfirmed:
		h.must(order.Confirm{})
	case order.StatusShipped:
		h.must(order.Confirm{}, order.Ship{TrackingNumber: "1Z999", Carrier: "UPS"})
	case order.StatusDelivered:
		h.must(order.Confirm{}, order.Ship{TrackingNumber: "1Z999", Carrier: "UPS"}, order.Deliver{})
	case order.StatusCancelled:
		h.must(order.Cancel{Reason: "changed my mind"})
	}
	if h.o.Status != s {
		t.Fatalf("harness reached %s, want %s", h.o.Status, s)
	}
	return h
}

func TestLifecycleStateAndReplay(t *testing.T) {
	h := newHarness(t)
	evs, err := h.do(createCmd())
	if err != nil {
		t.Fatal(err)
	}
	created := evs[0].(order.OrderCreated)
	if created.TotalCents != 2*1250+99 || created.OrderID != orderID || created.CustomerID != customerID || !reflect.DeepEqual(created.Items, items()) {
		t.Fatalf("created %+v", created)
	}
	createdAt := h.now.UTC()
	if h.o.Status != order.StatusCreated || h.o.TotalCents != 2599 || h.o.Version() != 1 || !h.o.CreatedAt.Equal(createdAt) || h.o.CreatedAt.Location() != time.UTC {
		t.Fatalf("after create %+v", h.o)
	}

	newItems := []order.Item{{ProductID: productC, Quantity: 4, UnitPriceCents: 250}}
	evs, err = h.do(order.UpdateItems{Items: newItems, Reason: "  customer asked  "})
	if err != nil {
		t.Fatal(err)
	}
	if up := evs[0].(order.OrderItemsUpdated); up.TotalCents != 1000 || up.Reason != "customer asked" {
		t.Fatalf("updated %+v", up)
	}
	if h.o.TotalCents != 1000 || !reflect.DeepEqual(h.o.Items, newItems) {
		t.Fatalf("after update %+v", h.o)
	}
	// the same items again are a no-op and refused
	_, err = h.do(order.UpdateItems{Items: newItems})
	var re *es.RuleError
	if !errors.As(err, &re) || re.Rule != order.RuleUpdateItemsUnchanged {
		t.Fatalf("no-op update: %v", err)
	}

	h.must(order.Confirm{})
	evs, err = h.do(order.Ship{TrackingNumber: " 1Z999AA1 ", Carrier: "\tUPS "})
	if err != nil {
		t.Fatal(err)
	}
	if sh := evs[0].(order.OrderShipped); sh.TrackingNumber != "1Z999AA1" || sh.Carrier != "UPS" {
		t.Fatalf("shipped %+v", sh)
	}
	h.must(order.Deliver{Signature: " J. Doe "})
	if h.o.Status != order.StatusDelivered || h.o.TrackingNumber != "1Z999AA1" || h.o.Carrier != "UPS" ||
		h.o.DeliverySignature != "J. Doe" || h.o.Version() != 5 || !h.o.UpdatedAt.Equal(h.now) || !h.o.CreatedAt.Equal(createdAt) {
		t.Fatalf("after deliver %+v", h.o)
	}
	h.checkReplay()
}

func TestCancelKeepsReason(t *testing.T) {
	h := at(t, order.StatusShipped)
	evs, err := h.do(order.Cancel{Reason: " lost in transit ", CancelledBy: " support "})
	if err != nil {
		t.Fatal(err)
	}
	if c := evs[0].(order.OrderCancelled); c.Reason != "lost in transit" || c.CancelledBy != "support" {
		t.Fatalf("cancelled %+v", c)
	}
	if h.o.Status != order.StatusCancelled || h.o.CancelReason != "lost in transit" {
		t.Fatalf("state %+v", h.o)
	}
	h.checkReplay()
}

func TestApplyNeedsCreationFirst(t *testing.T) {
	o := order.New(orderID)
	if err := o.Apply(order.OrderConfirmed{}, t0); err == nil {
		t.Fatal("OrderConfirmed applied to an order never created")
	}
	if err := o.Apply(order.OrderCreated{OrderID: orderID, CustomerID: customerID, Items: items(), TotalCents: 2599}, t0); err != nil {
		t.Fatal(err)
	}
	if err := o.Apply(order.OrderCreated{OrderID: orderID}, t0); err == nil {
		t.Fatal("second OrderCreated applied")
	}
	type bogus struct{ es.Event }
	if err := o.Apply(bogus{order.OrderConfirmed{}}, t0); err == nil {
		t.Fatal("foreign event applied")
	}
}

func TestReplayedEnvelopesCarrySequence(t *testing.T) {
	h := at(t, order.StatusDelivered)
	for i, e := range h.envs {
		if e.Sequence != int64(i+1) || e.AggregateType != order.AggregateType || e.AggregateID != orderID {
			t.Fatalf("envelope %d: %v", i, e)
		}
	}
	if r := h.replayed(); r.Version() != 4 {
		t.Fatalf("version %d", r.Version())
	}
	h.checkReplay()
}

func TestTotal(t *testing.T) {
	if got, err := order.Total(items()); err != nil || got != 2599 {
		t.Fatalf("total %d %v", got, err)
	}
	if got, err := order.Total(nil); err != nil || got != 0 {
		t.Fatalf("empty total %d %v", got, err)
	}
	big := []order.Item{{Quantity: 3, UnitPriceCents: math.MaxInt64 / 2}}
	if _, err := order.Total(big); !errors.Is(err, order.ErrTotalOverflow) {
		t.Fatalf("overflow: %v", err)
	}
}

func TestStatusNames(t *testing.T) {
	names := map[order.Status]string{
		order.StatusUnspecified: "UNSPECIFIED", order.StatusCreated: "CREATED", order.StatusConfirmed: "CONFIRMED",
		order.StatusShipped: "SHIPPED", order.StatusDelivered: "DELIVERED", order.StatusCancelled: "CANCELLED",
	}
	for s, n := range names {
		if s.String() != n {
			t.Errorf("%d: %q, want %q", s, s.String(), n)
		}
		if s == order.StatusUnspecified {
			continue
		}
		if p, err := order.ParseStatus(n); err != nil || p != s {
			t.Errorf("ParseStatus(%q) = %v, %v", n, p, err)
		}
	}
	if _, err := order.ParseStatus("LOST"); err == nil {
		t.Error("ParseStatus accepted LOST")
	}
	if order.Status(42).String() != "Status(42)" {
		t.Error("unknown status name")
	}
}
