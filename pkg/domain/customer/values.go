package customer

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ordersys/ordersys/pkg/domain/check"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
)

// Limits of the value objects and commands.
const (
	// MaxEmailLen bounds an email address, in bytes (RFC 5321 path limit).
	MaxEmailLen = 254
	// MaxEmailLocalLen bounds the part of an email address before the @.
	MaxEmailLocalLen = 64
	// MinPhoneDigits and MaxPhoneDigits bound the digits of an E.164 number.
	MinPhoneDigits, MaxPhoneDigits = 8, 15
	// MaxNameLen bounds a first or last name, in characters.
	MaxNameLen = 100
	// MaxLabelLen bounds an address label, in characters.
	MaxLabelLen = 50
	// MaxAddressLineLen bounds an address line, in characters.
	MaxAddressLineLen = 200
	// MaxCityLen bounds a city or region, in characters.
	MaxCityLen = 100
	// MaxPostalCodeLen bounds a postal code, in characters.
	MaxPostalCodeLen = 20
	// MaxBrandLen bounds a payment method's brand, in characters.
	MaxBrandLen = 50
	// MinExpYear and MaxExpYear bound a card's expiry year.
	MinExpYear, MaxExpYear = 2000, 9999
	// MaxReasonLen bounds a suspension or deactivation reason, in characters.
	MaxReasonLen = 500
	// MaxAddresses is the most addresses a customer may hold.
	MaxAddresses = 10
	// MaxPaymentMethods is the most payment methods a customer may hold.
	MaxPaymentMethods = 10
)

// Email is a syntactically valid email address: trimmed, with a lower-case domain. Make one with
// NewEmail; the conversion Email(s) is for values already checked (stored events, snapshots).
type Email string

// String returns the address.
func (e Email) String() string { return string(e) }

// NewEmail checks and normalizes an email address: it trims spaces and lower-cases the domain,
// then requires at most 254 characters, exactly one @, a local part of 1–64 characters among
// letters, digits and !#$%&'*+/=?^_`{|}~.- without leading, trailing or doubled dots, and a
// domain of dot-separated labels (letters, digits, inner hyphens; 1–63 characters each) with at
// least one dot and a top-level label that is not all digits. The error is the reason alone,
// and it never quotes the address or a part of it: reasons reach span statuses and stored
// rejections in clear (docs/privacy.md).
func NewEmail(s string) (Email, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("is required")
	}
	if len(s) > MaxEmailLen {
		return "", fmt.Errorf("must be at most %d characters, got %d", MaxEmailLen, len(s))
	}
	if n := strings.Count(s, "@"); n != 1 {
		return "", fmt.Errorf("must contain exactly one @, found %d", n)
	}
	local, domain, _ := strings.Cut(s, "@")
	switch {
	case local == "":
		return "", errors.New("must have a local part before the @")
	case len(local) > MaxEmailLocalLen:
		return "", fmt.Errorf("local part must be at most %d characters, got %d", MaxEmailLocalLen, len(local))
	case local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, ".."):
		return "", errors.New("local part must not start or end with a dot or hold two dots in a row")
	}
	for _, r := range local {
		if !(r < utf8.RuneSelf && (isAlnum(byte(r)) || strings.ContainsRune("!#$%&'*+/=?^_`{|}~.-", r))) {
			return "", errors.New("local part must hold only ASCII letters, digits and !#$%&'*+/=?^_`{|}~.-")
		}
	}
	domain = strings.ToLower(domain)
	if domain == "" {
		return "", errors.New("must have a domain after the @")
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return "", errors.New("domain must contain a dot")
	}
	for _, l := range labels {
		if l == "" {
			return "", errors.New("domain must not have an empty label (leading, trailing or doubled dot)")
		}
		if len(l) > 63 {
			return "", errors.New("domain labels must be at most 63 characters each")
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", errors.New("domain labels must not start or end with a hyphen")
		}
		for i := 0; i < len(l); i++ {
			if !isAlnum(l[i]) && l[i] != '-' {
				return "", errors.New("domain must hold only ASCII letters, digits, hyphens and dots")
			}
		}
	}
	if tld := labels[len(labels)-1]; strings.Trim(tld, "0123456789") == "" {
		return "", errors.New("top-level domain must not be all digits")
	}
	return Email(local + "@" + domain), nil
}

func isAlnum(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// PhoneNumber is a phone number in E.164 form: "+" and 8 to 15 digits. Make one with
// NewPhoneNumber; the empty PhoneNumber means "no phone".
type PhoneNumber string

// String returns the number.
func (p PhoneNumber) String() string { return string(p) }

// NewPhoneNumber checks and normalizes a phone number: spaces, dashes and parentheses are
// removed, then the rest must be "+" followed by 8 to 15 digits, the first not 0 (country codes
// never start with 0). The error is the reason alone and never quotes the number or a part of it.
func NewPhoneNumber(s string) (PhoneNumber, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '-', '(', ')':
			return -1
		}
		return r
	}, s)
	if s == "" {
		return "", errors.New("is required")
	}
	digits, ok := strings.CutPrefix(s, "+")
	if !ok {
		return "", errors.New(`must start with "+" and the country code (E.164)`)
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return "", errors.New("must contain only digits after the + (spaces, dashes and parentheses aside)")
		}
	}
	if n := len(digits); n < MinPhoneDigits || n > MaxPhoneDigits {
		return "", fmt.Errorf("must have %d to %d digits after the +, got %d", MinPhoneDigits, MaxPhoneDigits, n)
	}
	if digits[0] == '0' {
		return "", errors.New("country code must not start with 0")
	}
	return PhoneNumber(s), nil
}

// Address is a postal address of a customer.
type Address struct {
	// AddressID is the address's UUID, chosen by the client.
	AddressID string
	// Label is a free name such as "home" (optional, at most MaxLabelLen characters).
	Label string
	// Line1 is the street line (required, at most MaxAddressLineLen characters).
	Line1 string
	// Line2 is a second street line (optional, at most MaxAddressLineLen characters).
	Line2 string
	// City is the locality (required, at most MaxCityLen characters).
	City string
	// Region is the state, province or region (optional, at most MaxCityLen characters).
	Region string
	// PostalCode is required, at most MaxPostalCodeLen characters.
	PostalCode string
	// CountryCode is the ISO 3166-1 alpha-2 code in upper case, e.g. "DE".
	CountryCode string
	// IsDefault marks the customer's default address; at most one is.
	IsDefault bool
}

// Normalized returns the address with every text field trimmed of surrounding spaces and its
// id in canonical form (ids.Canonical).
func (a Address) Normalized() Address {
	a.AddressID = ids.Canonical(a.AddressID)
	a.Label = strings.TrimSpace(a.Label)
	a.Line1 = strings.TrimSpace(a.Line1)
	a.Line2 = strings.TrimSpace(a.Line2)
	a.City = strings.TrimSpace(a.City)
	a.Region = strings.TrimSpace(a.Region)
	a.PostalCode = strings.TrimSpace(a.PostalCode)
	a.CountryCode = strings.TrimSpace(a.CountryCode)
	return a
}

// Validate checks the address (as Normalized would leave it) and returns an *es.ValidationError
// whose field paths are relative to the address ("line1", "country_code", …), or nil. The
// reasons never quote a value: every field of an address is personal data.
func (a Address) Validate() error {
	a = a.Normalized()
	var v es.Violations
	check.UUID(&v, "address_id", a.AddressID)
	check.PlainText(&v, "label", a.Label, MaxLabelLen, false)
	check.PlainText(&v, "line1", a.Line1, MaxAddressLineLen, true)
	check.PlainText(&v, "line2", a.Line2, MaxAddressLineLen, false)
	check.PlainText(&v, "city", a.City, MaxCityLen, true)
	check.PlainText(&v, "region", a.Region, MaxCityLen, false)
	check.PlainText(&v, "postal_code", a.PostalCode, MaxPostalCodeLen, true)
	if cc := a.CountryCode; len(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z' {
		v.Add("country_code", "must be two upper-case letters (ISO 3166-1 alpha-2)")
	}
	return v.Err()
}

// PaymentMethodKind is the kind of a payment instrument. The numbers match
// orders.v1.PaymentMethodKind.
type PaymentMethodKind int32

const (
	// KindUnspecified is the zero value; it is invalid in commands.
	KindUnspecified PaymentMethodKind = iota
	// KindCard is a credit or debit card.
	KindCard
	// KindBankAccount is a bank account (direct debit).
	KindBankAccount
	// KindWallet is a digital wallet.
	KindWallet
)

// String returns the kind name in upper case, e.g. "BANK_ACCOUNT".
func (k PaymentMethodKind) String() string {
	switch k {
	case KindUnspecified:
		return "UNSPECIFIED"
	case KindCard:
		return "CARD"
	case KindBankAccount:
		return "BANK_ACCOUNT"
	case KindWallet:
		return "WALLET"
	default:
		return fmt.Sprintf("PaymentMethodKind(%d)", int32(k))
	}
}

// PaymentMethod is a stored payment instrument of a customer: display data only, never a full
// card or account number.
type PaymentMethod struct {
	// PaymentMethodID is the payment method's UUID, chosen by the client.
	PaymentMethodID string
	// Kind is card, bank account or wallet.
	Kind PaymentMethodKind
	// Brand names the scheme, bank or provider, e.g. "visa" (required, at most MaxBrandLen).
	Brand string
	// Last4 is the last four digits: required for cards and bank accounts, optional for
	// wallets.
	Last4 string
	// ExpMonth is a card's expiry month (1–12); zero for other kinds.
	ExpMonth int32
	// ExpYear is a card's four-digit expiry year; zero for other kinds.
	ExpYear int32
	// IsDefault marks the customer's default payment method; at most one is.
	IsDefault bool
}

// Normalized returns the payment method with its text fields trimmed and its id in canonical
// form (ids.Canonical).
func (p PaymentMethod) Normalized() PaymentMethod {
	p.PaymentMethodID = ids.Canonical(p.PaymentMethodID)
	p.Brand = strings.TrimSpace(p.Brand)
	p.Last4 = strings.TrimSpace(p.Last4)
	return p
}

// Validate checks the payment method (as Normalized would leave it) regardless of the date and
// returns an *es.ValidationError with field paths relative to it, or nil. Whether a card has
// expired depends on the time: see ExpiredAt. The reasons never quote a value (the brand and
// expiry are personal data, and a bad last4 may be a whole card number).
func (p PaymentMethod) Validate() error {
	p = p.Normalized()
	var v es.Violations
	check.UUID(&v, "payment_method_id", p.PaymentMethodID)
	switch p.Kind {
	case KindCard, KindBankAccount, KindWallet:
	default:
		v.Addf("kind", "must be CARD, BANK_ACCOUNT or WALLET, got %s", p.Kind)
	}
	check.PlainText(&v, "brand", p.Brand, MaxBrandLen, true)
	switch {
	case p.Last4 == "" && (p.Kind == KindCard || p.Kind == KindBankAccount):
		v.Addf("last4", "is required for a %s", p.Kind)
	case p.Last4 != "" && (len(p.Last4) != 4 || !isDigits(p.Last4)):
		v.Add("last4", "must be exactly 4 digits")
	}
	if p.Kind == KindCard {
		if p.ExpMonth < 1 || p.ExpMonth > 12 {
			v.Add("exp_month", "must be between 1 and 12")
		}
		if p.ExpYear < MinExpYear || p.ExpYear > MaxExpYear {
			v.Addf("exp_year", "must be a four-digit year from %d", MinExpYear)
		}
	} else {
		if p.ExpMonth != 0 {
			v.Addf("exp_month", "must be 0: only a card expires, this is a %s", p.Kind)
		}
		if p.ExpYear != 0 {
			v.Addf("exp_year", "must be 0: only a card expires, this is a %s", p.Kind)
		}
	}
	return v.Err()
}

// ExpiredAt reports whether the payment method is a card whose expiry month ended before now
// (a card is valid through the last day of its expiry month, in UTC).
func (p PaymentMethod) ExpiredAt(now time.Time) bool {
	if p.Kind != KindCard {
		return false
	}
	firstInvalid := time.Date(int(p.ExpYear), time.Month(p.ExpMonth)+1, 1, 0, 0, 0, 0, time.UTC)
	return !now.Before(firstInvalid)
}
