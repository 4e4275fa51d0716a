package command_test

// The proto comments are the contract: every command request field states its rules on a
// "Rules:" line (proto/orders/v1/*_command.proto, common.proto). This file reads those lines
// from the .proto sources (protocompile, with source info) into fieldRules; contract_test.go
// derives from them requests that must be refused (with the field's path) and requests that
// must be accepted, and sends both to the real server. A rule the comment states but the server
// does not enforce, or a check the server makes that no comment states, fails a test.

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// protoRoot is the folder holding orders/v1/*.proto, relative to this package.
const protoRoot = "../../proto"

// commandProtos are the files whose services take commands.
var commandProtos = []string{"orders/v1/order_command.proto", "orders/v1/customer_command.proto"}

// fieldRules is what one field's "Rules:" line says.
type fieldRules struct {
	required, optional    bool
	uuid                  bool
	maxChars              int // 0: no length rule
	plain                 bool
	hasRange              bool
	lo, hi                int64
	hasItems              bool
	minItems, maxItems    int
	uniqueProduct         bool
	email, e164           bool
	country, enum         bool
	fourDigits            bool
	requiredForCardOrBank bool
	cardRange             bool // the range applies to a CARD; any other kind needs 0
}

var (
	reRange      = regexp.MustCompile(`^(-?\d+) to (\d+)$`)
	reCardRange  = regexp.MustCompile(`^(\d+) to (\d+) for a CARD, else 0$`)
	reItems      = regexp.MustCompile(`^(\d+) to (\d+) items$`)
	reMaxChars   = regexp.MustCompile(`^at most (\d+) characters$`)
	reRulesLine  = regexp.MustCompile(`(?m)^\s*Rules:\s*(.*)$`)
	clauseParses = []struct {
		re  *regexp.Regexp
		set func(r *fieldRules, m []string)
	}{
		{regexp.MustCompile(`^required$`), func(r *fieldRules, _ []string) { r.required = true }},
		{regexp.MustCompile(`^optional$`), func(r *fieldRules, _ []string) { r.optional = true }},
		{regexp.MustCompile(`^a UUID, not the nil UUID$`), func(r *fieldRules, _ []string) { r.uuid = true }},
		{reMaxChars, func(r *fieldRules, m []string) { r.maxChars = atoi(m[1]) }},
		{regexp.MustCompile(`^no control characters$`), func(r *fieldRules, _ []string) { r.plain = true }},
		{reCardRange, func(r *fieldRules, m []string) {
			r.hasRange, r.cardRange, r.lo, r.hi = true, true, int64(atoi(m[1])), int64(atoi(m[2]))
		}},
		{reRange, func(r *fieldRules, m []string) {
			lo, _ := strconv.ParseInt(m[1], 10, 64)
			hi, _ := strconv.ParseInt(m[2], 10, 64)
			r.hasRange, r.lo, r.hi = true, lo, hi
		}},
		{reItems, func(r *fieldRules, m []string) { r.hasItems, r.minItems, r.maxItems = true, atoi(m[1]), atoi(m[2]) }},
		{regexp.MustCompile(`^each product_id at most once$`), func(r *fieldRules, _ []string) { r.uniqueProduct = true }},
		{regexp.MustCompile(`^an email address$`), func(r *fieldRules, _ []string) { r.email = true }},
		{regexp.MustCompile(`^an E\.164 phone number$`), func(r *fieldRules, _ []string) { r.e164 = true }},
		{regexp.MustCompile(`^two upper-case letters$`), func(r *fieldRules, _ []string) { r.country = true }},
		{regexp.MustCompile(`^a defined value$`), func(r *fieldRules, _ []string) { r.enum = true }},
		{regexp.MustCompile(`^exactly 4 digits$`), func(r *fieldRules, _ []string) { r.fourDigits = true }},
		{regexp.MustCompile(`^required for a CARD or BANK_ACCOUNT$`), func(r *fieldRules, _ []string) { r.requiredForCardOrBank = true }},
	}
)

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

// parseRules reads the "Rules:" line of a field comment; ok is false when there is none.
func parseRules(comment string) (fieldRules, bool, error) {
	m := reRulesLine.FindStringSubmatch(comment)
	if m == nil {
		return fieldRules{}, false, nil
	}
	var r fieldRules
	for _, clause := range strings.Split(strings.TrimSuffix(strings.TrimSpace(m[1]), "."), ";") {
		clause = strings.TrimSpace(clause)
		matched := false
		for _, p := range clauseParses {
			if sm := p.re.FindStringSubmatch(clause); sm != nil {
				p.set(&r, sm)
				matched = true
				break
			}
		}
		if !matched {
			return r, true, fmt.Errorf("unknown rule %q (the grammar is in contract_rules_test.go)", clause)
		}
	}
	return r, true, nil
}

// ruledField is one field of a request (or of a message inside it) with its rules and path.
type ruledField struct {
	path  string // request field path as the server reports it, e.g. items[0].quantity
	steps []protoreflect.FieldDescriptor
	fd    protoreflect.FieldDescriptor
	rules fieldRules
}

// contractMethod is one command RPC with the rules of every field of its request.
type contractMethod struct {
	fullName string // /orders.v1.OrderCommandService/CreateOrder
	method   protoreflect.MethodDescriptor
	fields   []ruledField
}

// loadContract compiles the command protos with source info and collects, for every RPC, the
// rules of every field reachable from its request. A field without a Rules line fails the test
// (except bool fields, which can hold no wrong value).
func loadContract(t testing.TB) []contractMethod {
	t.Helper()
	c := protocompile.Compiler{
		Resolver:       protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: []string{protoRoot}}),
		SourceInfoMode: protocompile.SourceInfoStandard,
	}
	files, err := c.Compile(context.Background(), commandProtos...)
	if err != nil {
		t.Fatalf("compile %v: %v", commandProtos, err)
	}
	var out []contractMethod
	for _, f := range files {
		for i := 0; i < f.Services().Len(); i++ {
			svc := f.Services().Get(i)
			for j := 0; j < svc.Methods().Len(); j++ {
				md := svc.Methods().Get(j)
				cm := contractMethod{fullName: "/" + string(svc.FullName()) + "/" + string(md.Name()), method: md}
				collect(t, md.Input(), "", nil, &cm.fields)
				out = append(out, cm)
			}
		}
	}
	return out
}

func collect(t testing.TB, msg protoreflect.MessageDescriptor, prefix string, steps []protoreflect.FieldDescriptor, out *[]ruledField) {
	for i := 0; i < msg.Fields().Len(); i++ {
		fd := msg.Fields().Get(i)
		path := prefix + string(fd.Name())
		loc := fd.ParentFile().SourceLocations().ByDescriptor(fd)
		r, ok, err := parseRules(loc.LeadingComments)
		switch {
		case err != nil:
			t.Errorf("%s (%s): %v", path, msg.FullName(), err)
			continue
		case !ok && fd.Kind() != protoreflect.BoolKind:
			t.Errorf("%s (%s) has no Rules line in its comment: state what the server accepts", path, msg.FullName())
			continue
		case !ok:
			continue
		}
		here := append(append([]protoreflect.FieldDescriptor(nil), steps...), fd)
		*out = append(*out, ruledField{path: path, steps: here, fd: fd, rules: r})
		if fd.Kind() == protoreflect.MessageKind {
			sub := path + "."
			if fd.IsList() {
				sub = path + "[0]."
			}
			collect(t, fd.Message(), sub, here, out)
		}
	}
}

// target returns the message holding the field's last step inside m, creating the messages
// (and the first list element) on the way.
func (f ruledField) target(m protoreflect.Message) protoreflect.Message {
	for _, s := range f.steps[:len(f.steps)-1] {
		step := field(m, s)
		if step.IsList() {
			l := m.Mutable(step).List()
			if l.Len() == 0 {
				l.Append(l.NewElement())
			}
			m = l.Get(0).Message()
			continue
		}
		m = m.Mutable(step).Message()
	}
	return m
}

// set stores v in the field (a zero v clears it).
func (f ruledField) set(m protoreflect.Message, v protoreflect.Value) {
	t := f.target(m)
	if !v.IsValid() {
		t.Clear(field(t, f.fd))
		return
	}
	t.Set(field(t, f.fd), v)
}

// field returns the field of m's own (generated) descriptor that has fd's name: the
// descriptors compiled from the .proto sources are distinct objects from the generated ones.
func field(m protoreflect.Message, fd protoreflect.FieldDescriptor) protoreflect.FieldDescriptor {
	return m.Descriptor().Fields().ByName(fd.Name())
}

// sibling returns the value of another field of the message holding f.
func (f ruledField) sibling(m protoreflect.Message, name protoreflect.Name) protoreflect.Value {
	t := f.target(m)
	return t.Get(t.Descriptor().Fields().ByName(name))
}

// intValue converts n to the field's integer kind.
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

// Generators of values that satisfy a rule: random, but always inside what the Rules line
// allows, so the server must accept them.

// text returns a random string of 1..max characters (multibyte ones included), never blank
// and, for plain fields, without control characters.
func text(rng *rand.Rand, max int) string {
	alphabet := []rune("abcXYZ019 -_.,'éßøł東京ø€😀")
	n := 1 + rng.IntN(max)
	rs := make([]rune, n)
	for i := range rs {
		rs[i] = alphabet[rng.IntN(len(alphabet))]
	}
	rs[0] = 'a' // never blank once trimmed
	return string(rs)
}

func digits(rng *rand.Rand, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteByte(byte('0' + rng.IntN(10)))
	}
	return b.String()
}

var validEmails = []string{"ann@example.com", "Ann.Lee+tag@Example.CO.UK", "x@a-b.io", "o'brien@mail.example.org"}
