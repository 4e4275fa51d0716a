package order_test

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
)

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
