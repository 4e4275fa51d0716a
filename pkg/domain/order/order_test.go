package order_test

import (
	"errors"
	"math"
	"reflect"
	"strings"
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

func fields(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *es.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, es.ErrInvalidArgument) {
		t.Fatalf("want *es.ValidationError, got %T: %v", err, err)
	}
	out := make([]string, len(ve.Violations))
	for i, v := range ve.Violations {
		out[i] = v.Field
	}
	return out
}

func TestValidateFieldPaths(t *testing.T) {
	many := make([]order.Item, order.MaxItems+1)
	for i := range many {
		many[i] = order.Item{ProductID: ids.New(), Quantity: 1}
	}
	hundred := many[:order.MaxItems]
	maxed := make([]order.Item, order.MaxItems)
	for i := range maxed {
		maxed[i] = order.Item{ProductID: ids.New(), Quantity: order.MaxQuantity, UnitPriceCents: order.MaxUnitPriceCents}
	}
	long := func(n int) string { return strings.Repeat("é", n) }
	cases := []struct {
		name string
		cmd  order.Command
		want []string // nil: valid
	}{
		{"create ok", createCmd(), nil},
		{"create 100 items ok", order.Create{Customer: order.CustomerActive, OrderID: orderID, CustomerID: customerID, Items: hundred}, nil},
		{"create zero price ok", order.Create{Customer: order.CustomerActive, OrderID: orderID, CustomerID: customerID, Items: []order.Item{{ProductID: productA, Quantity: order.MaxQuantity}}}, nil},
		{"create upper-case uuids ok", order.Create{Customer: order.CustomerActive, OrderID: strings.ToUpper(orderID), CustomerID: strings.ToUpper(customerID), Items: items()}, nil},
		{"create missing ids", order.Create{Customer: order.CustomerActive, Items: items()}, []string{"order_id", "customer_id"}},
		{"create malformed ids", order.Create{Customer: order.CustomerActive, OrderID: "123", CustomerID: "7c9e6679742540de944be07fc1f90ae7", Items: items()}, []string{"order_id", "customer_id"}},
		{"create no items", order.Create{Customer: order.CustomerActive, OrderID: orderID, CustomerID: customerID}, []string{"items"}},
		{"create too many items", order.Create{Customer: order.CustomerActive, OrderID: orderID, CustomerID: customerID, Items: many}, []string{"items"}},
		{"create bad lines", order.Create{Customer: order.CustomerActive, OrderID: orderID, CustomerID: customerID, Items: []order.Item{
			{ProductID: productA, Quantity: 1, UnitPriceCents: -1},
			{ProductID: "nope", Quantity: order.MaxQuantity + 1, UnitPriceCents: 5},
			{ProductID: productB, Quantity: 0, UnitPriceCents: 5},
			{ProductID: "", Quantity: -3, UnitPriceCents: 5},
		}}, []string{"items[0].unit_price_cents", "items[1].product_id", "items[1].quantity", "items[2].quantity", "items[3].product_id", "items[3].quantity"}},
		{"create repeated product", order.Create{Customer: order.CustomerActive, OrderID: orderID, CustomerID: customerID, Items: []order.Item{
			{ProductID: productA, Quantity: 1}, {ProductID: productB, Quantity: 1}, {ProductID: strings.ToUpper(productA), Quantity: 1},
		}}, []string{"items[2].product_id"}},
		{"create nil uuids", order.Create{Customer: order.CustomerActive, OrderID: ids.Nil, CustomerID: ids.Nil, Items: []order.Item{{ProductID: ids.Nil, Quantity: 1}}},
			[]string{"order_id", "customer_id", "items[0].product_id"}},
		{"create price above max", order.Create{Customer: order.CustomerActive, OrderID: orderID, CustomerID: customerID, Items: []order.Item{
			{ProductID: productA, Quantity: 1, UnitPriceCents: 1}, {ProductID: productB, Quantity: 1, UnitPriceCents: order.MaxUnitPriceCents + 1},
		}}, []string{"items[1].unit_price_cents"}},
		{"create price 2^63-1 refused on the item", order.Create{Customer: order.CustomerActive, OrderID: orderID, CustomerID: customerID, Items: []order.Item{
			{ProductID: productA, Quantity: 1, UnitPriceCents: math.MaxInt64},
		}}, []string{"items[0].unit_price_cents"}},
		{"create largest order ok", order.Create{Customer: order.CustomerActive, OrderID: orderID, CustomerID: customerID, Items: maxed}, nil},
		{"update ok", order.UpdateItems{Items: items(), Reason: long(order.MaxReasonLen)}, nil},
		{"update bad", order.UpdateItems{Items: []order.Item{{ProductID: productA, Quantity: 0}}, Reason: long(order.MaxReasonLen + 1)}, []string{"items[0].quantity", "reason"}},
		{"update empty", order.UpdateItems{}, []string{"items"}},
		{"confirm ok", order.Confirm{}, nil},
		{"ship ok trimmed to limit", order.Ship{TrackingNumber: "  " + long(order.MaxShippingFieldLen) + " ", Carrier: "DHL"}, nil},
		{"ship missing", order.Ship{TrackingNumber: "   ", Carrier: ""}, []string{"tracking_number", "carrier"}},
		{"ship too long", order.Ship{TrackingNumber: "1Z", Carrier: long(order.MaxShippingFieldLen + 1)}, []string{"carrier"}},
		{"ship not utf-8", order.Ship{TrackingNumber: "1Z\xff", Carrier: "DHL"}, []string{"tracking_number"}},
		{"deliver empty ok", order.Deliver{}, nil},
		{"deliver long", order.Deliver{Signature: long(order.MaxSignatureLen + 1)}, []string{"signature"}},
		{"deliver at limit ok", order.Deliver{Signature: long(order.MaxSignatureLen)}, nil},
		{"cancel without reason", order.Cancel{Reason: "  "}, []string{"reason"}},
		{"cancel ok", order.Cancel{Reason: "r"}, nil},
		{"cancel long", order.Cancel{Reason: long(order.MaxReasonLen + 1), CancelledBy: long(order.MaxCancelledByLen + 1)}, []string{"reason", "cancelled_by"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := fields(t, c.cmd.Validate()); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("fields %v, want %v (err %v)", got, c.want, c.cmd.Validate())
			}
		})
	}
}

func TestDecideValidatesBeforeState(t *testing.T) {
	o := order.New(orderID) // version 0: a valid Ship would be NotFound
	_, err := o.Decide(order.Ship{}, t0)
	if got := fields(t, err); !reflect.DeepEqual(got, []string{"tracking_number", "carrier"}) {
		t.Fatalf("got %v", err)
	}
	h := at(t, order.StatusDelivered) // a valid UpdateItems would break a rule
	_, err = h.o.Decide(order.UpdateItems{}, t0)
	if !errors.Is(err, es.ErrInvalidArgument) {
		t.Fatalf("got %v", err)
	}
}

func TestCreateMustTargetTheAggregate(t *testing.T) {
	c := createCmd()
	c.OrderID = productA
	_, err := order.New(orderID).Decide(c, t0)
	if got := fields(t, err); !reflect.DeepEqual(got, []string{"order_id"}) {
		t.Fatalf("got %v", err)
	}
}

func TestExistence(t *testing.T) {
	others := []order.Command{
		order.UpdateItems{Items: items()}, order.Confirm{}, order.Ship{TrackingNumber: "x", Carrier: "y"},
		order.Deliver{}, order.Cancel{Reason: "r"},
	}
	for _, c := range others {
		if _, err := order.New(orderID).Decide(c, t0); !errors.Is(err, es.ErrNotFound) {
			t.Errorf("%T on a new order: %v, want ErrNotFound", c, err)
		}
	}
	for _, s := range []order.Status{order.StatusCreated, order.StatusConfirmed, order.StatusShipped, order.StatusDelivered, order.StatusCancelled} {
		h := at(t, s)
		if _, err := h.o.Decide(createCmd(), t0); !errors.Is(err, es.ErrAlreadyExists) {
			t.Errorf("create on %s order: %v, want ErrAlreadyExists", s, err)
		}
	}
}

func TestUnsupportedCommand(t *testing.T) {
	h := at(t, order.StatusCreated)
	if _, err := h.o.Decide(&order.Confirm{}, t0); err == nil || errors.Is(err, es.ErrNotFound) {
		t.Fatalf("pointer command: %v", err)
	}
	if _, err := h.o.Decide(nil, t0); err == nil {
		t.Fatal("nil command accepted")
	}
}

// TestTransitionMatrix decides every command in every status: either the named event or the
// named rule.
func TestTransitionMatrix(t *testing.T) {
	newItems := []order.Item{{ProductID: productC, Quantity: 3, UnitPriceCents: 500}}
	cmds := []struct {
		name string
		cmd  order.Command
	}{
		{"update", order.UpdateItems{Items: newItems, Reason: "swap"}},
		{"confirm", order.Confirm{}},
		{"ship", order.Ship{TrackingNumber: "T1", Carrier: "DHL"}},
		{"deliver", order.Deliver{Signature: "J. Doe"}},
		{"cancel", order.Cancel{Reason: "r"}},
	}
	// want[status][command]: an event type, or a rule id prefixed with "!".
	want := map[order.Status]map[string]string{
		order.StatusCreated: {
			"update": order.EventOrderItemsUpdated, "confirm": order.EventOrderConfirmed,
			"ship": "!" + order.RuleShipRequiresConfirmed, "deliver": "!" + order.RuleDeliverRequiresShipped,
			"cancel": order.EventOrderCancelled,
		},
		order.StatusConfirmed: {
			"update": "!" + order.RuleUpdateItemsRequiresCreated, "confirm": "!" + order.RuleConfirmRequiresCreated,
			"ship": order.EventOrderShipped, "deliver": "!" + order.RuleDeliverRequiresShipped,
			"cancel": order.EventOrderCancelled,
		},
		order.StatusShipped: {
			"update": "!" + order.RuleUpdateItemsRequiresCreated, "confirm": "!" + order.RuleConfirmRequiresCreated,
			"ship": "!" + order.RuleShipRequiresConfirmed, "deliver": order.EventOrderDelivered,
			"cancel": order.EventOrderCancelled,
		},
		order.StatusDelivered: {
			"update": "!" + order.RuleUpdateItemsRequiresCreated, "confirm": "!" + order.RuleConfirmRequiresCreated,
			"ship": "!" + order.RuleShipRequiresConfirmed, "deliver": "!" + order.RuleDeliverRequiresShipped,
			"cancel": "!" + order.RuleCancelNotDelivered,
		},
		order.StatusCancelled: {
			"update": "!" + order.RuleUpdateItemsRequiresCreated, "confirm": "!" + order.RuleConfirmRequiresCreated,
			"ship": "!" + order.RuleShipRequiresConfirmed, "deliver": "!" + order.RuleDeliverRequiresShipped,
			"cancel": "!" + order.RuleCancelNotCancelled,
		},
	}
	for status, row := range want {
		for _, c := range cmds {
			t.Run(status.String()+"/"+c.name, func(t *testing.T) {
				h := at(t, status)
				before := *h.o
				before.Items = append([]order.Item(nil), h.o.Items...)
				evs, err := h.do(c.cmd)
				exp := row[c.name]
				if rule, refused := strings.CutPrefix(exp, "!"); refused {
					var re *es.RuleError
					if !errors.As(err, &re) || !errors.Is(err, es.ErrRuleViolation) || re.Rule != rule {
						t.Fatalf("got %v, want rule %s", err, rule)
					}
					if !strings.Contains(re.Reason, status.String()) {
						t.Errorf("reason %q does not name the status %s", re.Reason, status)
					}
					if !reflect.DeepEqual(&before, h.o) {
						t.Fatal("a refused command changed the state")
					}
					return
				}
				if err != nil {
					t.Fatalf("got %v, want %s", err, exp)
				}
				if len(evs) != 1 || evs[0].EventType() != exp {
					t.Fatalf("events %v, want [%s]", evs, exp)
				}
				h.checkReplay()
			})
		}
	}
}

func TestDecideDoesNotChangeState(t *testing.T) {
	h := at(t, order.StatusCreated)
	before := *h.o
	for _, c := range []order.Command{order.UpdateItems{Items: []order.Item{{ProductID: productC, Quantity: 1}}}, order.Confirm{}, order.Cancel{Reason: "r"}} {
		if _, err := h.o.Decide(c, t0); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(&before, h.o) {
		t.Fatal("Decide changed the state")
	}
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

func TestValidationReasons(t *testing.T) {
	err := order.Create{Customer: order.CustomerActive, OrderID: orderID, CustomerID: "nope", Items: []order.Item{
		{ProductID: productA, Quantity: 1, UnitPriceCents: -5},
		{ProductID: productA, Quantity: 0, UnitPriceCents: 5},
		{ProductID: productB, Quantity: order.MaxQuantity + 1},
	}}.Validate()
	var ve *es.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v", err)
	}
	want := []es.FieldViolation{
		{Field: "customer_id", Reason: ids.Reason + `, got "nope"`},
		{Field: "items[0].unit_price_cents", Reason: "must not be negative, got -5"},
		{Field: "items[1].product_id", Reason: "repeats items[0].product_id; give each product once with its total quantity"},
		{Field: "items[1].quantity", Reason: "must be greater than 0, got 0"},
		{Field: "items[2].quantity", Reason: "must be at most 10000, got 10001"},
	}
	if !reflect.DeepEqual(ve.Violations, want) {
		t.Fatalf("violations\n%v\nwant\n%v", ve.Violations, want)
	}
}

func TestCreateNeedsAnActiveCustomer(t *testing.T) {
	cases := []struct {
		standing order.CustomerStanding
		rule     string // "" for allowed
	}{
		{order.CustomerActive, ""},
		{order.CustomerUnchecked, order.RuleCreateCustomerExists},
		{order.CustomerMissing, order.RuleCreateCustomerExists},
		{order.CustomerSuspended, order.RuleCreateCustomerActive},
		{order.CustomerDeactivated, order.RuleCreateCustomerActive},
	}
	for _, c := range cases {
		cmd := createCmd()
		cmd.Customer = c.standing
		_, err := order.New(orderID).Decide(cmd, t0)
		var re *es.RuleError
		switch {
		case c.rule == "" && err != nil:
			t.Errorf("%s: %v, want the order placed", c.standing, err)
		case c.rule != "" && (!errors.As(err, &re) || re.Rule != c.rule || re.Subject != customerID):
			t.Errorf("%s: %v, want rule %s about customer %s", c.standing, err, c.rule, customerID)
		}
	}
}

func TestIDsAreStoredCanonical(t *testing.T) {
	cmd := createCmd()
	cmd.OrderID, cmd.CustomerID = strings.ToUpper(orderID), " "+strings.ToUpper(customerID)
	cmd.Items = []order.Item{{ProductID: strings.ToUpper(productA), Quantity: 1}}
	evs, err := order.New(orderID).Decide(cmd, t0)
	if err != nil {
		t.Fatal(err)
	}
	oc := evs[0].(order.OrderCreated)
	if oc.OrderID != orderID || oc.CustomerID != customerID || oc.Items[0].ProductID != productA {
		t.Fatalf("OrderCreated %+v: ids not canonical", oc)
	}
}
