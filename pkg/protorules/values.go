package protorules

import (
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ordersys/ordersys/pkg/domain/ids"
)

// Probe is one value to try in a field; OK says whether the field's rules allow it.
type Probe struct {
	// What names the probe in a failure, e.g. "past the length limit".
	What string
	// Value is the value to set (an invalid Value clears the field).
	Value protoreflect.Value
	// OK is true when the rules allow the value.
	OK bool
	// Prep, when set, adjusts the request first (e.g. makes the payment method a WALLET).
	Prep func(req protoreflect.Message)
}

// walletKind is orders.v1.PaymentMethodKind WALLET, an instrument that never expires.
const walletKind = 3

// Probes derives from the field's rules the values at and just past each limit. req is a
// request of the field's RPC (lists and messages are built from its types); rng makes the
// elements of list probes.
func (f Field) Probes(rng *rand.Rand, req protoreflect.Message) []Probe {
	r, fd := f.Rules, f.fd
	var ps []Probe
	add := func(what string, v protoreflect.Value, ok bool) {
		if v.IsValid() || what == "unset" || what == "no items" {
			ps = append(ps, Probe{What: what, Value: v, OK: ok})
		}
	}
	str := func(what, s string, ok bool) { add(what, protoreflect.ValueOfString(s), ok) }
	num := func(what string, n int64, ok bool) { add(what, intValue(fd, n), ok) }
	wallet := func(m protoreflect.Message) {
		f.setSibling(m, "kind", protoreflect.ValueOfEnum(walletKind))
		f.setSibling(m, "exp_month", protoreflect.ValueOfInt32(0))
		f.setSibling(m, "exp_year", protoreflect.ValueOfInt32(0))
	}
	if fd.IsList() {
		if r.HasItems {
			if r.MinItems > 0 {
				add("no items", protoreflect.Value{}, false)
			}
			add("most items", f.list(rng, req, r.MaxItems, false), true)
			add("one item too many", f.list(rng, req, r.MaxItems+1, false), false)
		}
		if r.UniqueField != "" {
			add("repeated "+r.UniqueField, f.list(rng, req, 2, true), false)
		}
		return ps
	}
	switch fd.Kind() {
	case protoreflect.StringKind:
		if r.Required {
			str("empty", "", false)
			str("blank", "   ", false)
		}
		if r.Optional {
			str("empty", "", true)
		}
		if r.UUID {
			str("not a uuid", "order-1", false)
			str("nil uuid", ids.Nil, false)
			str("uuid without hyphens", strings.ReplaceAll(ids.New(), "-", ""), false)
			str("upper-case uuid", strings.ToUpper(ids.New()), true)
		}
		if r.MaxChars > 0 {
			str("at the length limit", " "+strings.Repeat("é", r.MaxChars)+" ", true)
			str("past the length limit", strings.Repeat("é", r.MaxChars+1), false)
		}
		if r.Plain {
			str("control character", "a\tb", false)
		}
		if r.Email {
			str("not an email", "ann.example.com", false)
			str("email", "Ann.Lee@Example.COM", true)
		}
		if r.E164 {
			str("not E.164", "0151 2345", false)
			str("E.164", "+49 (151) 234-5678", true)
		}
		if r.Country {
			str("lower-case country", "de", false)
			str("country", "DE", true)
		}
		if r.FourDigits {
			str("not 4 digits", "12a4", false)
			str("4 digits", "0042", true)
		}
		if r.PageToken {
			str("not a page token", "garbage", false)
		}
		if r.RequiredForCardOrBank {
			str("empty for a CARD", "", false)
			ps = append(ps, Probe{What: "empty for a WALLET", Value: protoreflect.ValueOfString(""), OK: true, Prep: wallet})
		}
	case protoreflect.EnumKind:
		if r.Required {
			num("UNSPECIFIED", 0, false)
		}
		if r.Enum {
			vals := fd.Enum().Values()
			top := int64(vals.Get(vals.Len() - 1).Number())
			p := Probe{What: "highest defined value", Value: intValue(fd, top), OK: true}
			if fd.Name() == "kind" && top == walletKind {
				p.Prep = wallet // the expiry fields follow the kind ("for a CARD, else 0")
			}
			ps = append(ps, p)
			num("undefined value", top+1, false)
		}
	case protoreflect.MessageKind:
		if r.Required {
			add("unset", protoreflect.Value{}, false)
		}
		if r.Timestamp {
			add("past year 9999", protoreflect.ValueOfMessage((&timestamppb.Timestamp{Seconds: 253402300800}).ProtoReflect()), false)
			add("a valid time", protoreflect.ValueOfMessage(timestamppb.Now().ProtoReflect()), true)
		}
	default: // integers
		if !r.HasRange {
			break
		}
		num("lowest", r.Lo, true)
		num("highest", r.Hi, true)
		if r.Lo > math.MinInt64 {
			num("below the range", r.Lo-1, false)
		}
		if r.Hi < math.MaxInt64 {
			num("above the range", r.Hi+1, false)
		}
		if r.CardRange {
			ps = append(ps, Probe{What: "non-zero for a WALLET", Value: intValue(fd, r.Lo), OK: false, Prep: wallet},
				Probe{What: "zero for a WALLET", Value: intValue(fd, 0), OK: true, Prep: wallet})
		}
	}
	return ps
}

// RandomValid returns a random value that the field's rules allow (an invalid Value: keep
// what the request holds). req is the request being filled: a card-dependent range reads the
// sibling kind from it.
func (f Field) RandomValid(rng *rand.Rand, req protoreflect.Message) protoreflect.Value {
	r, fd := f.Rules, f.fd
	if fd.IsList() {
		if !r.HasItems {
			return protoreflect.Value{}
		}
		return f.list(rng, req, max(r.MinItems, 1+rng.IntN(r.MaxItems)), false)
	}
	if r.CardRange && f.sibling(req, "kind").Enum() != 1 { // 1: CARD
		return intValue(fd, 0)
	}
	return randomFor(rng, r, fd)
}

// randomFor returns a random value of the field's kind inside r (invalid: no opinion).
func randomFor(rng *rand.Rand, r Rules, fd protoreflect.FieldDescriptor) protoreflect.Value {
	if r.Optional && fd.Kind() == protoreflect.StringKind && rng.IntN(4) == 0 {
		return protoreflect.ValueOfString("")
	}
	if r.Optional && fd.HasPresence() && fd.Kind() != protoreflect.StringKind && rng.IntN(4) != 0 {
		return protoreflect.Value{} // mostly unset: a random expected_version is a conflict
	}
	switch fd.Kind() {
	case protoreflect.StringKind:
		switch {
		case r.UUID:
			if rng.IntN(2) == 0 {
				return protoreflect.ValueOfString(strings.ToUpper(ids.New()))
			}
			return protoreflect.ValueOfString(ids.New())
		case r.Email:
			return protoreflect.ValueOfString(validEmails[rng.IntN(len(validEmails))])
		case r.E164:
			return protoreflect.ValueOfString("+" + string(rune('1'+rng.IntN(9))) + digits(rng, 7+rng.IntN(8)))
		case r.Country:
			return protoreflect.ValueOfString(string(rune('A'+rng.IntN(26))) + string(rune('A'+rng.IntN(26))))
		case r.FourDigits:
			return protoreflect.ValueOfString(digits(rng, 4))
		case r.MaxChars > 0:
			return protoreflect.ValueOfString(text(rng, r.MaxChars))
		}
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		return protoreflect.ValueOfEnum(vals.Get(1 + rng.IntN(vals.Len()-1)).Number())
	case protoreflect.MessageKind:
		if r.Timestamp {
			return protoreflect.ValueOfMessage(timestamppb.New(time.Now().Add(-time.Duration(rng.Int64N(1e15)))).ProtoReflect())
		}
	default:
		if !r.HasRange {
			break
		}
		if r.Lo == 0 && r.Hi == math.MaxInt64 {
			return intValue(fd, rng.Int64())
		}
		return intValue(fd, r.Lo+rng.Int64N(r.Hi-r.Lo+1))
	}
	return protoreflect.Value{}
}

// list returns n elements for the list field, each filled with random values its element
// type's rules allow; with repeat, every element repeats the first one's unique field.
func (f Field) list(rng *rand.Rand, req protoreflect.Message, n int, repeat bool) protoreflect.Value {
	holder := f.Target(req)
	l := holder.NewField(own(holder, f.fd)).List()
	elem := f.fd.Message() // compiled, with comments
	var first protoreflect.Value
	for i := 0; i < n; i++ {
		el := l.NewElement().Message()
		for j := 0; j < elem.Fields().Len(); j++ {
			cf := elem.Fields().Get(j)
			r, ok, err := Parse(cf.ParentFile().SourceLocations().ByDescriptor(cf).LeadingComments)
			if !ok || err != nil {
				continue
			}
			if v := randomFor(rng, r, cf); v.IsValid() {
				el.Set(own(el, cf), v)
			}
		}
		if u := f.Rules.UniqueField; u != "" && repeat {
			uf := el.Descriptor().Fields().ByName(protoreflect.Name(u))
			if i == 0 {
				first = el.Get(uf)
			} else {
				el.Set(uf, first)
			}
		}
		l.Append(protoreflect.ValueOfMessage(el))
	}
	return protoreflect.ValueOfList(l)
}

// intValue converts n to the field's integer kind (invalid when it does not fit).
func intValue(fd protoreflect.FieldDescriptor, n int64) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		if n < math.MinInt32 || n > math.MaxInt32 {
			return protoreflect.Value{}
		}
		return protoreflect.ValueOfInt32(int32(n))
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n))
	default:
		return protoreflect.ValueOfInt64(n)
	}
}

// text returns a random string of 1..max characters (multibyte ones included), never blank
// once trimmed and without control characters.
func text(rng *rand.Rand, max int) string {
	alphabet := []rune("abcXYZ019 -_.,'éßøł東京€😀")
	rs := make([]rune, 1+rng.IntN(max))
	for i := range rs {
		rs[i] = alphabet[rng.IntN(len(alphabet))]
	}
	rs[0] = 'a'
	return string(rs)
}

func digits(rng *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		b.WriteByte(byte('0' + rng.IntN(10)))
	}
	return b.String()
}

var validEmails = []string{"ann@example.com", "Ann.Lee+tag@Example.CO.UK", "x@a-b.io", "o'brien@mail.example.org"}
