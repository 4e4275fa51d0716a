package order_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
)

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
