package customer_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/es"
)

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
