package customer_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
)

const (
	customerID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	addr1      = "a0000000-0000-4000-8000-000000000001"
	addr2      = "a0000000-0000-4000-8000-000000000002"
	addr3      = "a0000000-0000-4000-8000-000000000003"
	pm1        = "b0000000-0000-4000-8000-000000000001"
	pm2        = "b0000000-0000-4000-8000-000000000002"
	pm3        = "b0000000-0000-4000-8000-000000000003"
)

// t0 is in a non-UTC zone on purpose: the state must hold UTC times however time is given.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 987654321, time.FixedZone("EST", -5*3600))

func address(id string, def bool) customer.Address {
	return customer.Address{
		AddressID: id, Label: "home", Line1: "Unter den Linden 1", Line2: "3. OG", City: "Berlin",
		Region: "BE", PostalCode: "10117", CountryCode: "DE", IsDefault: def,
	}
}

func card(id string, month, year int32) customer.PaymentMethod {
	return customer.PaymentMethod{PaymentMethodID: id, Kind: customer.KindCard, Brand: "visa", Last4: "4242", ExpMonth: month, ExpYear: year}
}

func register() customer.Register {
	return customer.Register{CustomerID: customerID, Email: "jane@example.com", FirstName: "Jane", LastName: "Doe", Phone: "+49 151 12345678"}
}

// harness drives one customer the way the command service does and keeps every envelope.
type harness struct {
	t    *testing.T
	c    *customer.Customer
	envs []es.Envelope
	now  time.Time
}

func newHarness(t *testing.T) *harness {
	return &harness{t: t, c: customer.New(customerID), now: t0}
}

// do decides cmd and applies its events directly (Apply + SetVersion).
func (h *harness) do(cmd customer.Command) ([]es.Event, error) {
	h.t.Helper()
	h.now = h.now.Add(time.Minute)
	evs, err := h.c.Decide(cmd, h.now)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		h.t.Fatalf("%T succeeded without an event", cmd)
	}
	h.envs = append(h.envs, es.NewEnvelopes(h.c, evs, es.Metadata{CausationID: ids.New()}, h.now, ids.New)...)
	for _, e := range evs {
		if err := h.c.Apply(e, h.now); err != nil {
			h.t.Fatalf("apply %s: %v", e.EventType(), err)
		}
		h.c.SetVersion(h.c.Version() + 1)
	}
	return evs, nil
}

func (h *harness) must(cmds ...customer.Command) []es.Event {
	h.t.Helper()
	var all []es.Event
	for _, c := range cmds {
		evs, err := h.do(c)
		if err != nil {
			h.t.Fatalf("%T: %v", c, err)
		}
		all = append(all, evs...)
	}
	return all
}

func (h *harness) checkReplay() {
	h.t.Helper()
	r := customer.New(customerID)
	if err := es.Replay(r, h.envs); err != nil {
		h.t.Fatalf("replay: %v", err)
	}
	if !reflect.DeepEqual(r, h.c) {
		h.t.Fatalf("replayed state differs\nreplayed: %+v\nreached:  %+v", r, h.c)
	}
}

// at returns a registered customer with address addr1 and card pm1, in the given status.
func at(t *testing.T, s customer.Status) *harness {
	t.Helper()
	h := newHarness(t)
	h.must(register(), customer.AddAddress{Address: address(addr1, false)}, customer.AddPaymentMethod{PaymentMethod: card(pm1, 12, 2030)})
	switch s {
	case customer.StatusSuspended:
		h.must(customer.Suspend{Reason: "chargeback"})
	case customer.StatusDeactivated:
		h.must(customer.Deactivate{Reason: "closed by request"})
	case customer.StatusErased:
		h.must(customer.Erase{})
	}
	if h.c.Status != s {
		t.Fatalf("harness reached %s, want %s", h.c.Status, s)
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

// wantRule fails unless err is an *es.RuleError with the given rule id.
func wantRule(t *testing.T, err error, rule string) *es.RuleError {
	t.Helper()
	var re *es.RuleError
	if !errors.As(err, &re) || !errors.Is(err, es.ErrRuleViolation) || re.Rule != rule {
		t.Fatalf("got %v, want rule %s", err, rule)
	}
	return re
}

func TestRegister(t *testing.T) {
	h := newHarness(t)
	evs := h.must(customer.Register{CustomerID: customerID, Email: " Jane@EXAMPLE.com ", FirstName: " Jane ", LastName: "Doe", Phone: "+49 (151) 1234-5678"})
	want := customer.CustomerRegistered{CustomerID: customerID, Email: "Jane@example.com", FirstName: "Jane", LastName: "Doe", Phone: "+4915112345678", Tier: customer.TierBronze}
	if !reflect.DeepEqual(evs[0], want) {
		t.Fatalf("event %+v\nwant  %+v", evs[0], want)
	}
	c := h.c
	if c.Status != customer.StatusActive || c.Tier != customer.TierBronze || c.Email != "Jane@example.com" || c.Phone != "+4915112345678" ||
		c.Version() != 1 || !c.CreatedAt.Equal(h.now) || c.CreatedAt.Location() != time.UTC || c.UpdatedAt != c.CreatedAt {
		t.Fatalf("state %+v", c)
	}
	h2 := newHarness(t)
	r := register()
	r.Phone = ""
	if evs := h2.must(r); evs[0].(customer.CustomerRegistered).Phone != "" {
		t.Fatal("phone invented")
	}
}

func second[T any](_ T, err error) error { return err }

func defaults(as []customer.Address) string {
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "%s=%v ", a.AddressID[len(a.AddressID)-1:], a.IsDefault)
	}
	return strings.TrimSpace(b.String())
}

func pmDefaults(ps []customer.PaymentMethod) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%s=%v ", p.PaymentMethodID[len(p.PaymentMethodID)-1:], p.IsDefault)
	}
	return strings.TrimSpace(b.String())
}

func TestTierOnlyGoesUp(t *testing.T) {
	h := at(t, customer.StatusActive)
	re := wantRule(t, second(h.do(customer.UpgradeTier{Tier: customer.TierBronze})), customer.RuleTierNotUpward)
	if !strings.Contains(re.Reason, "BRONZE") {
		t.Errorf("reason %q", re.Reason)
	}
	evs := h.must(customer.UpgradeTier{Tier: customer.TierSilver}, customer.UpgradeTier{Tier: customer.TierPlatinum})
	if e := evs[1].(customer.CustomerTierUpgraded); e.OldTier != customer.TierSilver || e.NewTier != customer.TierPlatinum {
		t.Fatalf("event %+v", e)
	}
	wantRule(t, second(h.do(customer.UpgradeTier{Tier: customer.TierGold})), customer.RuleTierNotUpward)
	wantRule(t, second(h.do(customer.UpgradeTier{Tier: customer.TierPlatinum})), customer.RuleTierNotUpward)
	if h.c.Tier != customer.TierPlatinum {
		t.Fatalf("tier %s", h.c.Tier)
	}
	h.checkReplay()
}

func TestSuspendReactivateDeactivate(t *testing.T) {
	h := at(t, customer.StatusActive)
	evs := h.must(customer.Suspend{Reason: "  chargeback  "})
	if e := evs[0].(customer.CustomerSuspended); e.Reason != "chargeback" {
		t.Fatalf("event %+v", e)
	}
	h.must(customer.Reactivate{}, customer.Suspend{Reason: "again"}, customer.Deactivate{Reason: "closed"})
	if h.c.Status != customer.StatusDeactivated || h.c.Version() != 7 {
		t.Fatalf("state %s v%d", h.c.Status, h.c.Version())
	}
	h.checkReplay()
}

func TestDecideDoesNotChangeState(t *testing.T) {
	h := at(t, customer.StatusActive)
	before := *h.c
	before.Addresses = append([]customer.Address(nil), h.c.Addresses...)
	before.PaymentMethods = append([]customer.PaymentMethod(nil), h.c.PaymentMethods...)
	for _, c := range allCommands()[1:] {
		_, _ = h.c.Decide(c.cmd, t0)
	}
	if !reflect.DeepEqual(&before, h.c) {
		t.Fatal("Decide changed the state")
	}
}

func TestApplyNeedsRegistrationFirst(t *testing.T) {
	c := customer.New(customerID)
	if err := c.Apply(customer.CustomerSuspended{Reason: "x"}, t0); err == nil {
		t.Fatal("event applied before registration")
	}
	if err := c.Apply(customer.CustomerRegistered{CustomerID: customerID, Tier: customer.TierBronze}, t0); err != nil {
		t.Fatal(err)
	}
	if err := c.Apply(customer.CustomerRegistered{CustomerID: customerID}, t0); err == nil {
		t.Fatal("second registration applied")
	}
	if err := c.Apply(customer.CustomerAddressRemoved{AddressID: addr1}, t0); err == nil {
		t.Fatal("removal of an unknown address applied")
	}
	type bogus struct{ es.Event }
	if err := c.Apply(bogus{customer.CustomerReactivated{}}, t0); err == nil {
		t.Fatal("foreign event applied")
	}
}

// TestLongHistoryReplays drives a customer through every event type and checks that replay
// from the envelopes rebuilds exactly the same state.
func TestLongHistoryReplays(t *testing.T) {
	h := at(t, customer.StatusActive)
	h.must(
		customer.UpdateProfile{FirstName: "J.", LastName: "Doe"},
		customer.ChangeEmail{Email: "j@doe.dev"},
		customer.ChangePhone{Phone: "+1 415 555 2671"},
		customer.AddAddress{Address: address(addr2, true)},
		customer.UpdateAddress{Address: address(addr1, false)},
		customer.AddPaymentMethod{PaymentMethod: card(pm2, 7, 2027)},
		customer.RemoveAddress{AddressID: addr2},
		customer.RemovePaymentMethod{PaymentMethodID: pm1},
		customer.UpgradeTier{Tier: customer.TierSilver},
		customer.Suspend{Reason: "review"},
		customer.Reactivate{},
	)
	if h.c.Version() != 14 || defaults(h.c.Addresses) != "1=true" || pmDefaults(h.c.PaymentMethods) != "2=true" {
		t.Fatalf("state v%d %s %s", h.c.Version(), defaults(h.c.Addresses), pmDefaults(h.c.PaymentMethods))
	}
	h.checkReplay()
}

// TestEraseDropsPersonalData: CustomerErased leaves id, tier, status and dates, and no personal
// field; the erased state replays.
func TestEraseDropsPersonalData(t *testing.T) {
	h := at(t, customer.StatusActive)
	h.must(customer.UpgradeTier{Tier: customer.TierGold})
	created := h.c.CreatedAt
	h.must(customer.Erase{})
	c := h.c
	if c.Email != "" || c.FirstName != "" || c.LastName != "" || c.Phone != "" || c.Addresses != nil || c.PaymentMethods != nil {
		t.Fatalf("personal data left after erasure: %+v", c)
	}
	if c.Status != customer.StatusErased || c.Tier != customer.TierGold || !c.CreatedAt.Equal(created) || c.Version() != 5 {
		t.Fatalf("erased state %+v", c)
	}
	h.checkReplay()
}
