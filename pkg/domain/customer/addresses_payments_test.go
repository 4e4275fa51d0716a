package customer_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/ids"
)

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
