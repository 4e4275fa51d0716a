package customer_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/domain/customer"
)

func TestNewEmail(t *testing.T) {
	cases := []struct {
		in, want string // want: the normalized email, or "!" + a substring of the reason
	}{
		{"jane.doe@example.com", "jane.doe@example.com"},
		{"  Jane.Doe+tag@Example.COM ", "Jane.Doe+tag@example.com"},
		{"o'brien@mail.co.uk", "o'brien@mail.co.uk"},
		{"a@b.io", "a@b.io"},
		{"x@xn--p1ai.xn--p1ai", "x@xn--p1ai.xn--p1ai"},
		{"", "!is required"},
		{"   ", "!is required"},
		{"jane.example.com", "!exactly one @, found 0"},
		{"a@b@example.com", "!exactly one @, found 2"},
		{"@example.com", "!local part before the @"},
		{"jane@", "!domain after the @"},
		{"jane@localhost", "!domain must contain a dot"},
		{".jane@example.com", "!must not start or end with a dot"},
		{"jane.@example.com", "!must not start or end with a dot"},
		{"ja..ne@example.com", "!two dots in a row"},
		{"ja ne@example.com", "!local part must hold only ASCII letters"},
		{"jäne@example.com", "!local part must hold only ASCII letters"},
		{strings.Repeat("a", 65) + "@example.com", "!local part must be at most 64"},
		{"jane@example..com", "!empty label"},
		{"jane@.example.com", "!empty label"},
		{"jane@example.com.", "!empty label"},
		{"jane@-example.com", "!hyphen"},
		{"jane@example-.com", "!hyphen"},
		{"jane@exa_mple.com", "!domain must hold only ASCII letters"},
		{"jane@" + strings.Repeat("a", 64) + ".com", "!at most 63"},
		{"jane@10.0.0.1", "!must not be all digits"},
		{"jane@" + strings.Repeat("abcdefghi.", 25) + "com", "!at most 254"},
	}
	for _, c := range cases {
		got, err := customer.NewEmail(c.in)
		if reason, bad := strings.CutPrefix(c.want, "!"); bad {
			if err == nil || !strings.Contains(err.Error(), reason) {
				t.Errorf("NewEmail(%q) = %q, %v; want error containing %q", c.in, got, err, reason)
			}
			continue
		}
		if err != nil || string(got) != c.want || got.String() != c.want {
			t.Errorf("NewEmail(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestNewPhoneNumber(t *testing.T) {
	cases := []struct{ in, want string }{
		{"+4915112345678", "+4915112345678"},
		{"+1 (415) 555-2671", "+14155552671"},
		{" +44 20 7946 0958 ", "+442079460958"},
		{"+12345678", "+12345678"},               // 8 digits
		{"+123456789012345", "+123456789012345"}, // 15 digits
		{"", "!is required"},
		{"  - ", "!is required"},
		{"004915112345678", `!must start with "+"`},
		{"+1234567", "!8 to 15 digits after the +, got 7"},
		{"+1234567890123456", "!8 to 15 digits after the +, got 16"},
		{"+49 151 1234x678", "!only digits after the +"},
		{"+49.151.12345678", "!only digits after the +"},
		{"+0491511234567", "!must not start with 0"},
		{"++4915112345678", "!only digits"},
	}
	for _, c := range cases {
		got, err := customer.NewPhoneNumber(c.in)
		if reason, bad := strings.CutPrefix(c.want, "!"); bad {
			if err == nil || !strings.Contains(err.Error(), reason) {
				t.Errorf("NewPhoneNumber(%q) = %q, %v; want error containing %q", c.in, got, err, reason)
			}
			continue
		}
		if err != nil || got.String() != c.want {
			t.Errorf("NewPhoneNumber(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestAddressValidate(t *testing.T) {
	ok := address(addr1, false)
	mod := func(f func(*customer.Address)) customer.Address { a := ok; f(&a); return a }
	cases := []struct {
		name string
		a    customer.Address
		want []string
	}{
		{"ok", ok, nil},
		{"ok minimal trimmed", customer.Address{AddressID: " " + addr1 + " ", Line1: " 1 Main St ", City: "Berlin", PostalCode: "10115", CountryCode: " DE "}, nil},
		{"empty", customer.Address{}, []string{"address_id", "line1", "city", "postal_code", "country_code"}},
		{"bad id", mod(func(a *customer.Address) { a.AddressID = "home" }), []string{"address_id"}},
		{"blank required", mod(func(a *customer.Address) { a.Line1, a.City, a.PostalCode = " ", "\t", "" }), []string{"line1", "city", "postal_code"}},
		{"too long", mod(func(a *customer.Address) {
			a.Label = strings.Repeat("l", customer.MaxLabelLen+1)
			a.Line1 = strings.Repeat("x", customer.MaxAddressLineLen+1)
			a.Line2 = strings.Repeat("x", customer.MaxAddressLineLen+1)
			a.City = strings.Repeat("c", customer.MaxCityLen+1)
			a.Region = strings.Repeat("r", customer.MaxCityLen+1)
			a.PostalCode = strings.Repeat("9", customer.MaxPostalCodeLen+1)
		}), []string{"label", "line1", "line2", "city", "region", "postal_code"}},
		{"at limits", mod(func(a *customer.Address) {
			a.Label = strings.Repeat("ł", customer.MaxLabelLen)
			a.Line1 = strings.Repeat("x", customer.MaxAddressLineLen)
			a.PostalCode = strings.Repeat("9", customer.MaxPostalCodeLen)
		}), nil},
		{"lower-case country", mod(func(a *customer.Address) { a.CountryCode = "de" }), []string{"country_code"}},
		{"three-letter country", mod(func(a *customer.Address) { a.CountryCode = "DEU" }), []string{"country_code"}},
		{"digit country", mod(func(a *customer.Address) { a.CountryCode = "D1" }), []string{"country_code"}},
		{"control character", mod(func(a *customer.Address) { a.Line2 = "a\x00b" }), []string{"line2"}},
		{"not utf-8", mod(func(a *customer.Address) { a.City = "\xffcity" }), []string{"city"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := fields(t, c.a.Validate()); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("fields %v, want %v", got, c.want)
			}
		})
	}
}

func TestPaymentMethodValidate(t *testing.T) {
	card := card(pm1, 12, 2030)
	mod := func(p customer.PaymentMethod, f func(*customer.PaymentMethod)) customer.PaymentMethod {
		f(&p)
		return p
	}
	cases := []struct {
		name string
		p    customer.PaymentMethod
		want []string
	}{
		{"card ok", card, nil},
		{"bank ok", customer.PaymentMethod{PaymentMethodID: pm2, Kind: customer.KindBankAccount, Brand: "sepa", Last4: "0042"}, nil},
		{"wallet ok without last4", customer.PaymentMethod{PaymentMethodID: pm2, Kind: customer.KindWallet, Brand: "paypal"}, nil},
		{"wallet with last4 ok", customer.PaymentMethod{PaymentMethodID: pm2, Kind: customer.KindWallet, Brand: "applepay", Last4: "1234"}, nil},
		{"empty", customer.PaymentMethod{}, []string{"payment_method_id", "kind", "brand"}},
		{"unknown kind", mod(card, func(p *customer.PaymentMethod) { p.Kind = 9 }), []string{"kind", "exp_month", "exp_year"}},
		{"bad id", mod(card, func(p *customer.PaymentMethod) { p.PaymentMethodID = "visa-1" }), []string{"payment_method_id"}},
		{"brand too long", mod(card, func(p *customer.PaymentMethod) { p.Brand = strings.Repeat("b", customer.MaxBrandLen+1) }), []string{"brand"}},
		{"card without last4", mod(card, func(p *customer.PaymentMethod) { p.Last4 = "" }), []string{"last4"}},
		{"bank without last4", customer.PaymentMethod{PaymentMethodID: pm2, Kind: customer.KindBankAccount, Brand: "sepa"}, []string{"last4"}},
		{"last4 three digits", mod(card, func(p *customer.PaymentMethod) { p.Last4 = "123" }), []string{"last4"}},
		{"last4 five digits", mod(card, func(p *customer.PaymentMethod) { p.Last4 = "12345" }), []string{"last4"}},
		{"last4 letters", mod(card, func(p *customer.PaymentMethod) { p.Last4 = "12a4" }), []string{"last4"}},
		{"wallet bad last4", customer.PaymentMethod{PaymentMethodID: pm2, Kind: customer.KindWallet, Brand: "paypal", Last4: "x"}, []string{"last4"}},
		{"month 0", mod(card, func(p *customer.PaymentMethod) { p.ExpMonth = 0 }), []string{"exp_month"}},
		{"month 13", mod(card, func(p *customer.PaymentMethod) { p.ExpMonth = 13 }), []string{"exp_month"}},
		{"two-digit year", mod(card, func(p *customer.PaymentMethod) { p.ExpYear = 30 }), []string{"exp_year"}},
		{"bank with expiry", customer.PaymentMethod{PaymentMethodID: pm2, Kind: customer.KindBankAccount, Brand: "sepa", Last4: "0042", ExpMonth: 1, ExpYear: 2030}, []string{"exp_month", "exp_year"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := fields(t, c.p.Validate()); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("fields %v, want %v (%v)", got, c.want, c.p.Validate())
			}
		})
	}
}

func TestCardExpiry(t *testing.T) {
	c := card(pm1, 2, 2025)
	cases := []struct {
		now  time.Time
		want bool
	}{
		{time.Date(2025, 1, 31, 0, 0, 0, 0, time.UTC), false},
		{time.Date(2025, 2, 28, 23, 59, 59, 0, time.UTC), false},
		{time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), true},
		{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), true},
	}
	for _, tc := range cases {
		if got := c.ExpiredAt(tc.now); got != tc.want {
			t.Errorf("ExpiredAt(%v) = %v", tc.now, got)
		}
	}
	dec := card(pm1, 12, 2025) // month 12 rolls into next year
	if dec.ExpiredAt(time.Date(2025, 12, 31, 12, 0, 0, 0, time.UTC)) || !dec.ExpiredAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Error("December expiry")
	}
	wallet := customer.PaymentMethod{Kind: customer.KindWallet}
	if wallet.ExpiredAt(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Error("a wallet expired")
	}
}

func TestEnumNames(t *testing.T) {
	tiers := []customer.Tier{customer.TierBronze, customer.TierSilver, customer.TierGold, customer.TierPlatinum}
	for i, tr := range tiers {
		if i > 0 && !(tiers[i-1] < tr) {
			t.Errorf("%s is not above %s", tr, tiers[i-1])
		}
		if p, err := customer.ParseTier(tr.String()); err != nil || p != tr || !tr.Valid() {
			t.Errorf("ParseTier(%s) = %v, %v", tr, p, err)
		}
	}
	if _, err := customer.ParseTier("DIAMOND"); err == nil || customer.TierUnspecified.Valid() || customer.Tier(5).Valid() {
		t.Error("invalid tiers accepted")
	}
	names := [][2]string{
		{customer.TierUnspecified.String(), "UNSPECIFIED"}, {customer.TierPlatinum.String(), "PLATINUM"},
		{customer.Tier(9).String(), "Tier(9)"}, {customer.StatusActive.String(), "ACTIVE"},
		{customer.StatusSuspended.String(), "SUSPENDED"}, {customer.StatusDeactivated.String(), "DEACTIVATED"},
		{customer.StatusUnspecified.String(), "UNSPECIFIED"}, {customer.Status(7).String(), "Status(7)"},
		{customer.KindCard.String(), "CARD"}, {customer.KindBankAccount.String(), "BANK_ACCOUNT"},
		{customer.KindWallet.String(), "WALLET"}, {customer.KindUnspecified.String(), "UNSPECIFIED"},
		{customer.PaymentMethodKind(8).String(), "PaymentMethodKind(8)"},
	}
	for _, n := range names {
		if got, want := n[0], n[1]; got != want {
			t.Errorf("name %q, want %q", got, want)
		}
	}
}
