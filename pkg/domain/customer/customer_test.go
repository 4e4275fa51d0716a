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

func TestCommandValidateFieldPaths(t *testing.T) {
	long := func(n int) string { return strings.Repeat("ö", n) }
	badAddr := address(addr1, false)
	badAddr.CountryCode, badAddr.City = "de", ""
	cases := []struct {
		name string
		cmd  customer.Command
		want []string
	}{
		{"register ok", register(), nil},
		{"register ok without phone", customer.Register{CustomerID: customerID, Email: "a@b.de", FirstName: "A", LastName: long(customer.MaxNameLen)}, nil},
		{"register all bad", customer.Register{CustomerID: "x", Email: "nope", FirstName: " ", LastName: long(customer.MaxNameLen + 1), Phone: "12"},
			[]string{"customer_id", "email", "first_name", "last_name", "phone"}},
		{"register missing", customer.Register{}, []string{"customer_id", "email", "first_name", "last_name"}},
		{"register control char in name", customer.Register{CustomerID: customerID, Email: "a@b.de", FirstName: "A\nB", LastName: "C"}, []string{"first_name"}},
		{"profile ok", customer.UpdateProfile{FirstName: "Jo", LastName: "Do"}, nil},
		{"profile bad", customer.UpdateProfile{FirstName: "", LastName: long(101)}, []string{"first_name", "last_name"}},
		{"email ok", customer.ChangeEmail{Email: "x@y.org"}, nil},
		{"email bad", customer.ChangeEmail{Email: "x@y"}, []string{"email"}},
		{"phone ok", customer.ChangePhone{Phone: "+14155552671"}, nil},
		{"phone removal ok", customer.ChangePhone{Phone: "  "}, nil},
		{"phone bad", customer.ChangePhone{Phone: "0151"}, []string{"phone"}},
		{"add address ok", customer.AddAddress{Address: address(addr1, true)}, nil},
		{"add address bad", customer.AddAddress{Address: badAddr}, []string{"address.city", "address.country_code"}},
		{"update address bad", customer.UpdateAddress{Address: customer.Address{AddressID: "1"}},
			[]string{"address.address_id", "address.line1", "address.city", "address.postal_code", "address.country_code"}},
		{"remove address ok", customer.RemoveAddress{AddressID: addr1}, nil},
		{"remove address bad", customer.RemoveAddress{AddressID: "home"}, []string{"address_id"}},
		{"remove address missing", customer.RemoveAddress{}, []string{"address_id"}},
		{"add pm ok", customer.AddPaymentMethod{PaymentMethod: card(pm1, 1, 2031)}, nil},
		{"add pm bad", customer.AddPaymentMethod{PaymentMethod: card("", 13, 31)},
			[]string{"payment_method.payment_method_id", "payment_method.exp_month", "payment_method.exp_year"}},
		{"remove pm bad", customer.RemovePaymentMethod{PaymentMethodID: "pm"}, []string{"payment_method_id"}},
		{"tier ok", customer.UpgradeTier{Tier: customer.TierGold}, nil},
		{"tier unspecified", customer.UpgradeTier{}, []string{"tier"}},
		{"tier unknown", customer.UpgradeTier{Tier: 7}, []string{"tier"}},
		{"suspend ok", customer.Suspend{Reason: "fraud check"}, nil},
		{"suspend without reason", customer.Suspend{Reason: "  "}, []string{"reason"}},
		{"suspend long reason", customer.Suspend{Reason: long(customer.MaxReasonLen + 1)}, []string{"reason"}},
		{"reactivate ok", customer.Reactivate{}, nil},
		{"deactivate ok", customer.Deactivate{Reason: long(customer.MaxReasonLen)}, nil},
		{"deactivate without reason", customer.Deactivate{}, []string{"reason"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := fields(t, c.cmd.Validate()); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("fields %v, want %v (%v)", got, c.want, c.cmd.Validate())
			}
		})
	}
}

func TestDecideValidatesBeforeState(t *testing.T) {
	if got := fields(t, func() error { _, err := customer.New(customerID).Decide(customer.Suspend{}, t0); return err }()); !reflect.DeepEqual(got, []string{"reason"}) {
		t.Fatalf("fields %v", got)
	}
	h := at(t, customer.StatusDeactivated)
	if _, err := h.c.Decide(customer.ChangeEmail{Email: "bad"}, t0); !errors.Is(err, es.ErrInvalidArgument) {
		t.Fatalf("got %v", err)
	}
}

func TestExistence(t *testing.T) {
	for _, cmd := range allCommands() {
		if _, isRegister := cmd.cmd.(customer.Register); isRegister {
			continue
		}
		if _, err := customer.New(customerID).Decide(cmd.cmd, t0); !errors.Is(err, es.ErrNotFound) {
			t.Errorf("%s on a new customer: %v, want ErrNotFound", cmd.name, err)
		}
	}
	for _, s := range []customer.Status{customer.StatusActive, customer.StatusSuspended, customer.StatusDeactivated} {
		if _, err := at(t, s).c.Decide(register(), t0); !errors.Is(err, es.ErrAlreadyExists) {
			t.Errorf("register on %s customer: %v, want ErrAlreadyExists", s, err)
		}
	}
	r := register()
	r.CustomerID = addr1
	if got := fields(t, func() error { _, err := customer.New(customerID).Decide(r, t0); return err }()); !reflect.DeepEqual(got, []string{"customer_id"}) {
		t.Fatalf("mismatched id: %v", got)
	}
}

func TestUnsupportedCommand(t *testing.T) {
	h := at(t, customer.StatusActive)
	if _, err := h.c.Decide(&customer.Reactivate{}, t0); err == nil {
		t.Fatal("pointer command accepted")
	}
	if _, err := h.c.Decide(nil, t0); err == nil {
		t.Fatal("nil command accepted")
	}
}

type namedCmd struct {
	name string
	cmd  customer.Command
	want string // event type when the command is allowed on the at() fixture
}

// allCommands lists one valid command per kind, each allowed on an ACTIVE at() fixture
// (Reactivate aside, which needs SUSPENDED).
func allCommands() []namedCmd {
	return []namedCmd{
		{"register", register(), customer.EventCustomerRegistered},
		{"update_profile", customer.UpdateProfile{FirstName: "Janet", LastName: "Doe"}, customer.EventCustomerProfileUpdated},
		{"change_email", customer.ChangeEmail{Email: "janet@example.org"}, customer.EventCustomerEmailChanged},
		{"change_phone", customer.ChangePhone{Phone: "+14155552671"}, customer.EventCustomerPhoneChanged},
		{"add_address", customer.AddAddress{Address: address(addr2, false)}, customer.EventCustomerAddressAdded},
		{"update_address", customer.UpdateAddress{Address: address(addr1, true)}, customer.EventCustomerAddressUpdated},
		{"remove_address", customer.RemoveAddress{AddressID: addr1}, customer.EventCustomerAddressRemoved},
		{"add_payment_method", customer.AddPaymentMethod{PaymentMethod: card(pm2, 6, 2029)}, customer.EventCustomerPaymentMethodAdded},
		{"remove_payment_method", customer.RemovePaymentMethod{PaymentMethodID: pm1}, customer.EventCustomerPaymentMethodRemoved},
		{"upgrade_tier", customer.UpgradeTier{Tier: customer.TierGold}, customer.EventCustomerTierUpgraded},
		{"suspend", customer.Suspend{Reason: "fraud check"}, customer.EventCustomerSuspended},
		{"reactivate", customer.Reactivate{}, customer.EventCustomerReactivated},
		{"deactivate", customer.Deactivate{Reason: "gdpr erasure"}, customer.EventCustomerDeactivated},
		{"erase", customer.Erase{}, customer.EventCustomerErased},
	}
}

// TestStatusMatrix decides every command in every status.
func TestStatusMatrix(t *testing.T) {
	for _, s := range []customer.Status{customer.StatusActive, customer.StatusSuspended, customer.StatusDeactivated, customer.StatusErased} {
		for _, c := range allCommands() {
			if c.name == "register" {
				continue // TestExistence
			}
			t.Run(s.String()+"/"+c.name, func(t *testing.T) {
				h := at(t, s)
				before := *h.c
				evs, err := h.do(c.cmd)
				var rule string
				switch {
				case s == customer.StatusErased:
					rule = customer.RuleErased
				case c.name == "erase": // accepted in every other status
				case s == customer.StatusDeactivated:
					rule = customer.RuleDeactivated
				case c.name == "reactivate" && s != customer.StatusSuspended:
					rule = customer.RuleReactivateRequiresSuspended
				case s == customer.StatusSuspended && c.name != "reactivate" && c.name != "deactivate":
					rule = customer.RuleRequiresActive
				}
				if rule != "" {
					re := wantRule(t, err, rule)
					if !strings.Contains(re.Reason, s.String()) {
						t.Errorf("reason %q does not name the status %s", re.Reason, s)
					}
					if !reflect.DeepEqual(&before, h.c) {
						t.Fatal("a refused command changed the state")
					}
					return
				}
				if err != nil {
					t.Fatalf("got %v, want %s", err, c.want)
				}
				if len(evs) != 1 || evs[0].EventType() != c.want {
					t.Fatalf("events %v, want [%s]", evs, c.want)
				}
				h.checkReplay()
			})
		}
	}
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

func TestNoOpChangesAreRefused(t *testing.T) {
	h := at(t, customer.StatusActive)
	wantRule(t, second(h.do(customer.UpdateProfile{FirstName: " Jane", LastName: "Doe "})), customer.RuleProfileUnchanged)
	wantRule(t, second(h.do(customer.ChangeEmail{Email: "jane@EXAMPLE.com"})), customer.RuleEmailUnchanged)
	wantRule(t, second(h.do(customer.ChangePhone{Phone: "+49-151-1234 5678"})), customer.RulePhoneUnchanged)

	// changes go through and record the old value
	evs := h.must(customer.UpdateProfile{FirstName: "Jane", LastName: "Smith"},
		customer.ChangeEmail{Email: "jane@example.org"}, customer.ChangePhone{Phone: ""})
	if e := evs[1].(customer.CustomerEmailChanged); e.OldEmail != "jane@example.com" || e.NewEmail != "jane@example.org" {
		t.Fatalf("email event %+v", e)
	}
	if e := evs[2].(customer.CustomerPhoneChanged); e.OldPhone != "+4915112345678" || e.NewPhone != "" {
		t.Fatalf("phone event %+v", e)
	}
	if h.c.LastName != "Smith" || h.c.Email != "jane@example.org" || h.c.Phone != "" {
		t.Fatalf("state %+v", h.c)
	}
	// removing a phone that is not there is a no-op too
	wantRule(t, second(h.do(customer.ChangePhone{})), customer.RulePhoneUnchanged)
	h.checkReplay()
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

func TestAddresses(t *testing.T) {
	h := newHarness(t)
	h.must(register())
	// the first address is the default even if not asked
	evs := h.must(customer.AddAddress{Address: address(" "+addr1+" ", false)})
	if a := evs[0].(customer.CustomerAddressAdded).Address; !a.IsDefault || a.AddressID != addr1 {
		t.Fatalf("first address %+v", a)
	}
	h.must(customer.AddAddress{Address: address(addr2, false)})
	if got := defaults(h.c.Addresses); got != "1=true 2=false" {
		t.Fatalf("defaults %s", got)
	}
	// adding a default clears the others
	h.must(customer.AddAddress{Address: address(addr3, true)})
	if got := defaults(h.c.Addresses); got != "1=false 2=false 3=true" {
		t.Fatalf("defaults %s", got)
	}
	// id taken, also in another case
	wantRule(t, second(h.do(customer.AddAddress{Address: address(strings.ToUpper(addr2), false)})), customer.RuleAddressIDTaken)
	// update: unknown id refused; the default stays default; making another default moves it
	wantRule(t, second(h.do(customer.UpdateAddress{Address: address(ids.New(), false)})), customer.RuleAddressUnknown)
	changed := address(addr3, false)
	changed.City = "Hamburg"
	h.must(customer.UpdateAddress{Address: changed})
	if a, _ := h.c.Address(addr3); !a.IsDefault || a.City != "Hamburg" {
		t.Fatalf("updated default %+v", a)
	}
	h.must(customer.UpdateAddress{Address: address(addr1, true)})
	if got := defaults(h.c.Addresses); got != "1=true 2=false 3=false" {
		t.Fatalf("defaults %s", got)
	}
	// remove: unknown refused; removing the default promotes the first remaining one
	wantRule(t, second(h.do(customer.RemoveAddress{AddressID: ids.New()})), customer.RuleAddressUnknown)
	h.must(customer.RemoveAddress{AddressID: addr1})
	if got := defaults(h.c.Addresses); got != "2=true 3=false" {
		t.Fatalf("defaults %s", got)
	}
	h.must(customer.RemoveAddress{AddressID: strings.ToUpper(addr3)})
	if got := defaults(h.c.Addresses); got != "2=true" {
		t.Fatalf("defaults %s", got)
	}
	h.must(customer.RemoveAddress{AddressID: addr2})
	if h.c.Addresses != nil {
		t.Fatalf("addresses %+v", h.c.Addresses)
	}
	h.checkReplay()
}

func TestAddressLimit(t *testing.T) {
	h := newHarness(t)
	h.must(register())
	for i := 0; i < customer.MaxAddresses; i++ {
		h.must(customer.AddAddress{Address: address(ids.New(), false)})
	}
	wantRule(t, second(h.do(customer.AddAddress{Address: address(ids.New(), false)})), customer.RuleAddressLimit)
	h.must(customer.RemoveAddress{AddressID: h.c.Addresses[4].AddressID}, customer.AddAddress{Address: address(ids.New(), false)})
	if len(h.c.Addresses) != customer.MaxAddresses {
		t.Fatalf("%d addresses", len(h.c.Addresses))
	}
	h.checkReplay()
}

func TestPaymentMethods(t *testing.T) {
	h := newHarness(t)
	h.now = time.Date(2025, 2, 28, 23, 0, 0, 0, time.UTC)
	h.must(register())
	// a card valid through this month is accepted and becomes the default
	evs := h.must(customer.AddPaymentMethod{PaymentMethod: card(pm1, 2, 2025)})
	if p := evs[0].(customer.CustomerPaymentMethodAdded).PaymentMethod; !p.IsDefault {
		t.Fatalf("first payment method %+v", p)
	}
	// a minute past the month it has expired (h.do advances the clock by a minute)
	h.now = time.Date(2025, 2, 28, 23, 59, 30, 0, time.UTC)
	wantRule(t, second(h.do(customer.AddPaymentMethod{PaymentMethod: card(pm2, 2, 2025)})), customer.RuleCardExpired)
	h.must(customer.AddPaymentMethod{PaymentMethod: customer.PaymentMethod{PaymentMethodID: pm2, Kind: customer.KindWallet, Brand: "paypal"}})
	h.must(customer.AddPaymentMethod{PaymentMethod: customer.PaymentMethod{PaymentMethodID: pm3, Kind: customer.KindBankAccount, Brand: "sepa", Last4: "0042", IsDefault: true}})
	if got := pmDefaults(h.c.PaymentMethods); got != "1=false 2=false 3=true" {
		t.Fatalf("defaults %s", got)
	}
	wantRule(t, second(h.do(customer.AddPaymentMethod{PaymentMethod: card(strings.ToUpper(pm1), 1, 2030)})), customer.RulePaymentMethodIDTaken)
	wantRule(t, second(h.do(customer.RemovePaymentMethod{PaymentMethodID: ids.New()})), customer.RulePaymentMethodUnknown)
	h.must(customer.RemovePaymentMethod{PaymentMethodID: pm3})
	if got := pmDefaults(h.c.PaymentMethods); got != "1=true 2=false" {
		t.Fatalf("defaults %s", got)
	}
	if _, ok := h.c.PaymentMethod(pm3); ok {
		t.Fatal("removed payment method still there")
	}
	h.must(customer.RemovePaymentMethod{PaymentMethodID: pm1}, customer.RemovePaymentMethod{PaymentMethodID: pm2})
	if h.c.PaymentMethods != nil {
		t.Fatalf("payment methods %+v", h.c.PaymentMethods)
	}
	h.checkReplay()
}

func TestPaymentMethodLimit(t *testing.T) {
	h := at(t, customer.StatusActive)
	for len(h.c.PaymentMethods) < customer.MaxPaymentMethods {
		h.must(customer.AddPaymentMethod{PaymentMethod: card(ids.New(), 1, 2031)})
	}
	wantRule(t, second(h.do(customer.AddPaymentMethod{PaymentMethod: card(ids.New(), 1, 2031)})), customer.RulePaymentMethodLimit)
	h.checkReplay()
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
