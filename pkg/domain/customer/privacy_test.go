package customer_test

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/es"
)

// Markers put into the personal values of the commands below (docs/privacy.md): no error text,
// rule reason or field violation reason may hold one. The text markers are looked for as they
// are, the numbers as whole numbers (an id or a limit may hold the same digits inside a longer
// number).
const (
	textMarker = "zqxmark"
	runeMarker = "ʬ"
	// digitMarker is in postal codes, phone numbers and bad last4s.
	digitMarker = "735291"
	// expiredMonth and expiredYear are a card's expiry in the past; badMonth and badYear are
	// out of range.
	expiredMonth, expiredYear, badMonth, badYear = 7, 2017, 77, 1987
)

var markedNumbers = regexp.MustCompile(fmt.Sprintf(`(^|\D)(%s|%d|%d|%d)(\D|$)`, digitMarker, expiredYear, badMonth, badYear))

func markedRegister() customer.Register {
	return customer.Register{
		CustomerID: customerID, Email: textMarker + "@" + textMarker + ".example", FirstName: "Jane" + textMarker,
		LastName: "Doe" + runeMarker, Phone: "+49" + digitMarker + "1234",
	}
}

func markedAddress(id string) customer.Address {
	return customer.Address{
		AddressID: id, Label: textMarker, Line1: textMarker + " 1", Line2: runeMarker, City: textMarker,
		Region: textMarker, PostalCode: digitMarker, CountryCode: "DE",
	}
}

func markedCard(id string, month, year int32) customer.PaymentMethod {
	return customer.PaymentMethod{PaymentMethodID: id, Kind: customer.KindCard, Brand: textMarker, Last4: "4242", ExpMonth: month, ExpYear: year}
}

// markedAt returns a customer registered with marked values, with marked address addr1 and card
// pm1, in the given status.
func markedAt(t *testing.T, s customer.Status) *harness {
	t.Helper()
	h := newHarness(t)
	h.must(markedRegister(), customer.AddAddress{Address: markedAddress(addr1)}, customer.AddPaymentMethod{PaymentMethod: markedCard(pm1, 12, 2030)})
	switch s {
	case customer.StatusSuspended:
		h.must(customer.Suspend{Reason: "review"})
	case customer.StatusDeactivated:
		h.must(customer.Deactivate{Reason: "closed"})
	case customer.StatusErased:
		h.must(customer.Erase{})
	}
	return h
}

// assertNamesNoPersonalValue fails unless err is a refusal whose texts hold no marker.
func assertNamesNoPersonalValue(t *testing.T, name string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: accepted, want a refusal", name)
		return
	}
	texts := []string{err.Error()}
	var re *es.RuleError
	if errors.As(err, &re) {
		texts = append(texts, re.Reason, re.Subject)
	}
	var ve *es.ValidationError
	if errors.As(err, &ve) {
		for _, v := range ve.Violations {
			texts = append(texts, v.Field, v.Reason)
		}
	}
	for _, s := range texts {
		if strings.Contains(s, textMarker) || strings.Contains(s, runeMarker) || markedNumbers.MatchString(s) {
			t.Errorf("%s: the error text quotes a personal value: %q", name, s)
		}
	}
}

// TestRefusalsNameNoPersonalValue: every rule refusal of a command carrying personal values, in
// every status, and every validation error of a bad personal value, names the rule or the field
// and the reason but never the value (reasons are stored in clear with the command's record and
// in command_rejections, and the status carrying them is recorded by tracing).
func TestRefusalsNameNoPersonalValue(t *testing.T) {
	r := markedRegister()
	refused := []namedCmd{
		{name: "register again", cmd: r},
		{name: "profile unchanged", cmd: customer.UpdateProfile{FirstName: r.FirstName, LastName: r.LastName}},
		{name: "email unchanged", cmd: customer.ChangeEmail{Email: r.Email}},
		{name: "phone unchanged", cmd: customer.ChangePhone{Phone: r.Phone}},
		{name: "address id taken", cmd: customer.AddAddress{Address: markedAddress(addr1)}},
		{name: "address unknown", cmd: customer.UpdateAddress{Address: markedAddress(addr3)}},
		{name: "payment method id taken", cmd: customer.AddPaymentMethod{PaymentMethod: markedCard(pm1, 12, 2030)}},
		{name: "card expired", cmd: customer.AddPaymentMethod{PaymentMethod: markedCard(pm2, expiredMonth, expiredYear)}},
	}
	for _, s := range []customer.Status{customer.StatusActive, customer.StatusSuspended, customer.StatusDeactivated, customer.StatusErased} {
		for _, c := range refused {
			_, err := markedAt(t, s).do(c.cmd)
			assertNamesNoPersonalValue(t, s.String()+"/"+c.name, err)
		}
	}

	full := markedAt(t, customer.StatusActive)
	for i := len(full.c.Addresses); i < customer.MaxAddresses; i++ {
		full.must(customer.AddAddress{Address: markedAddress(fmt.Sprintf("a0000000-0000-4000-8000-1000000000%02d", i))})
	}
	for i := len(full.c.PaymentMethods); i < customer.MaxPaymentMethods; i++ {
		full.must(customer.AddPaymentMethod{PaymentMethod: markedCard(fmt.Sprintf("b0000000-0000-4000-8000-1000000000%02d", i), 12, 2030)})
	}
	_, err := full.do(customer.AddAddress{Address: markedAddress(addr3)})
	assertNamesNoPersonalValue(t, "address limit", err)
	_, err = full.do(customer.AddPaymentMethod{PaymentMethod: markedCard(pm3, expiredMonth, expiredYear)})
	assertNamesNoPersonalValue(t, "payment method limit", err)

	address := func(f func(*customer.Address)) customer.Command {
		a := markedAddress(addr2)
		f(&a)
		return customer.AddAddress{Address: a}
	}
	card := func(f func(*customer.PaymentMethod)) customer.Command {
		p := markedCard(pm2, 12, 2030)
		f(&p)
		return customer.AddPaymentMethod{PaymentMethod: p}
	}
	long := strings.Repeat(textMarker, 40)
	invalid := []namedCmd{
		{name: "email local part character", cmd: customer.ChangeEmail{Email: textMarker + runeMarker + "@example.com"}},
		{name: "email local part space", cmd: customer.ChangeEmail{Email: textMarker + " x@example.com"}},
		{name: "email domain character", cmd: customer.ChangeEmail{Email: "jane@" + textMarker + runeMarker + ".com"}},
		{name: "email domain hyphen", cmd: customer.ChangeEmail{Email: "jane@-" + textMarker + ".com"}},
		{name: "email domain label too long", cmd: customer.ChangeEmail{Email: "jane@" + textMarker + strings.Repeat("a", 60) + ".com"}},
		{name: "email top-level domain digits", cmd: customer.ChangeEmail{Email: "jane@" + textMarker + "." + digitMarker}},
		{name: "email two @", cmd: customer.ChangeEmail{Email: textMarker + "@@" + textMarker + ".com"}},
		{name: "email dots", cmd: customer.ChangeEmail{Email: textMarker + "..x@example.com"}},
		{name: "email too long", cmd: customer.ChangeEmail{Email: long + "@example.com"}},
		{name: "phone character", cmd: customer.ChangePhone{Phone: "+49" + digitMarker + runeMarker}},
		{name: "phone no plus", cmd: customer.ChangePhone{Phone: textMarker}},
		{name: "phone too short", cmd: customer.ChangePhone{Phone: "+" + digitMarker}},
		{name: "name control character", cmd: customer.UpdateProfile{FirstName: textMarker + "\n", LastName: "x\x00" + runeMarker}},
		{name: "name too long", cmd: customer.UpdateProfile{FirstName: long + long + long, LastName: "Doe"}},
		{name: "register all bad", cmd: customer.Register{CustomerID: customerID, Email: textMarker, FirstName: "\x01" + textMarker, LastName: long + long + long, Phone: textMarker}},
		{name: "country code", cmd: address(func(a *customer.Address) { a.CountryCode = textMarker })},
		{name: "address lines", cmd: address(func(a *customer.Address) { a.Line1, a.Line2, a.City = "\x7f"+textMarker, long+long, "\t"+runeMarker })},
		{name: "postal code too long", cmd: address(func(a *customer.Address) { a.PostalCode = strings.Repeat(digitMarker+"-", 4) })},
		{name: "update address", cmd: customer.UpdateAddress{Address: customer.Address{AddressID: addr1, Line1: textMarker, CountryCode: runeMarker}}},
		{name: "last4 a card number", cmd: card(func(p *customer.PaymentMethod) { p.Last4 = digitMarker })},
		{name: "last4 letters", cmd: card(func(p *customer.PaymentMethod) { p.Last4 = "zq" + runeMarker })},
		{name: "expiry month", cmd: card(func(p *customer.PaymentMethod) { p.ExpMonth = badMonth })},
		{name: "expiry year", cmd: card(func(p *customer.PaymentMethod) { p.ExpYear = badYear })},
		{name: "brand", cmd: card(func(p *customer.PaymentMethod) { p.Brand = long + "\n" })},
	}
	for _, c := range invalid {
		_, err := markedAt(t, customer.StatusActive).do(c.cmd)
		if !errors.Is(err, es.ErrInvalidArgument) {
			t.Errorf("%s: %v, want an invalid argument", c.name, err)
		}
		assertNamesNoPersonalValue(t, c.name, err)
	}
}
