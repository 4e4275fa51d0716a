package command_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// baseline returns a request of the method that breaks no rule.
func baseline(t *testing.T, md protoreflect.MethodDescriptor) proto.Message {
	t.Helper()
	card := func() *ordersv1.PaymentMethod {
		return &ordersv1.PaymentMethod{PaymentMethodId: ids.New(), Kind: ordersv1.PaymentMethodKind_PAYMENT_METHOD_KIND_CARD,
			Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: 2040}
	}
	address := func() *ordersv1.Address {
		return &ordersv1.Address{AddressId: ids.New(), Line1: "1 Main St", City: "Springfield", PostalCode: "12345", CountryCode: "US"}
	}
	switch md.Name() {
	case "CreateOrder":
		return &ordersv1.CreateOrderRequest{OrderId: ids.New(), CustomerId: ids.New(), Items: items(2)}
	case "UpdateOrderItems":
		return &ordersv1.UpdateOrderItemsRequest{OrderId: ids.New(), Items: items(1)}
	case "ShipOrder":
		return &ordersv1.ShipOrderRequest{OrderId: ids.New(), TrackingNumber: "1Z999", Carrier: "UPS"}
	case "CancelOrder":
		return &ordersv1.CancelOrderRequest{OrderId: ids.New(), Reason: "changed my mind"}
	case "RegisterCustomer":
		return &ordersv1.RegisterCustomerRequest{CustomerId: ids.New(), Email: "ann@example.com", FirstName: "Ann", LastName: "Lee"}
	case "UpdateProfile":
		return &ordersv1.UpdateProfileRequest{CustomerId: ids.New(), FirstName: "Ann", LastName: "Lee"}
	case "ChangeEmail":
		return &ordersv1.ChangeEmailRequest{CustomerId: ids.New(), Email: "ann@example.com"}
	case "AddAddress":
		return &ordersv1.AddAddressRequest{CustomerId: ids.New(), Address: address()}
	case "UpdateAddress":
		return &ordersv1.UpdateAddressRequest{CustomerId: ids.New(), Address: address()}
	case "RemoveAddress":
		return &ordersv1.RemoveAddressRequest{CustomerId: ids.New(), AddressId: ids.New()}
	case "AddPaymentMethod":
		return &ordersv1.AddPaymentMethodRequest{CustomerId: ids.New(), PaymentMethod: card()}
	case "RemovePaymentMethod":
		return &ordersv1.RemovePaymentMethodRequest{CustomerId: ids.New(), PaymentMethodId: ids.New()}
	case "UpgradeTier":
		return &ordersv1.UpgradeTierRequest{CustomerId: ids.New(), Tier: ordersv1.CustomerTier_CUSTOMER_TIER_GOLD}
	case "SuspendCustomer", "DeactivateCustomer":
		m := newMessage(t, md.Input()).ProtoReflect()
		m.Set(m.Descriptor().Fields().ByName("customer_id"), protoreflect.ValueOfString(ids.New()))
		m.Set(m.Descriptor().Fields().ByName("reason"), protoreflect.ValueOfString("fraud check"))
		return m.Interface()
	}
	// Requests with an id only (ConfirmOrder, DeliverOrder, ChangePhone, ReactivateCustomer).
	m := newMessage(t, md.Input()).ProtoReflect()
	for _, name := range []protoreflect.Name{"order_id", "customer_id"} {
		if fd := m.Descriptor().Fields().ByName(name); fd != nil {
			m.Set(fd, protoreflect.ValueOfString(ids.New()))
		}
	}
	return m.Interface()
}

func newMessage(t *testing.T, md protoreflect.MessageDescriptor) proto.Message {
	t.Helper()
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
	if err != nil {
		t.Fatalf("generated type of %s: %v", md.FullName(), err)
	}
	return mt.New().Interface()
}

// invoke sends req to the method on the real server and returns the violated field paths of
// an InvalidArgument (nil for any other outcome).
func invoke(t *testing.T, s *server, cm contractMethod, req proto.Message) (violated []string, invalid bool) {
	t.Helper()
	violated, invalid, _ = invokeID(t, s, cm, req)
	return violated, invalid
}

// invokeID is invoke that also returns the aggregate id of a command that succeeded.
func invokeID(t *testing.T, s *server, cm contractMethod, req proto.Message) (violated []string, invalid bool, id string) {
	t.Helper()
	resp := newMessage(t, cm.method.Output())
	err := s.conn.Invoke(ctxT(t), cm.fullName, req, resp)
	st := status.Convert(err)
	if err == nil {
		r := resp.ProtoReflect()
		return nil, false, r.Get(r.Descriptor().Fields().ByName("aggregate_id")).String()
	}
	if st.Code() != codes.InvalidArgument {
		if st.Code() == codes.Internal || st.Code() == codes.Unknown {
			t.Errorf("%s %v: %v (an edge error must map to a precise code)", cm.fullName, req, err)
		}
		return nil, false, ""
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				violated = append(violated, v.GetField())
			}
		}
	}
	if len(violated) == 0 {
		t.Errorf("%s: InvalidArgument without field violations: %v", cm.fullName, err)
	}
	return violated, true, ""
}

// names reports whether one of the violated paths is path or below it.
func names(violated []string, path string) bool {
	for _, v := range violated {
		if v == path || strings.HasPrefix(v, path+".") || strings.HasPrefix(v, path+"[") {
			return true
		}
	}
	return false
}

// probe is one value to try in a field: ok says whether the rules allow it.
type probe struct {
	what string
	v    protoreflect.Value
	ok   bool
	prep func(m protoreflect.Message) // adjusts siblings first (nil: none)
}

// probes derives from a field's rules the values at and just past each limit.
func probes(f ruledField) []probe {
	r, fd := f.rules, f.fd
	var ps []probe
	str := func(what, s string, ok bool) {
		ps = append(ps, probe{what: what, v: protoreflect.ValueOfString(s), ok: ok})
	}
	num := func(what string, n int64, ok bool) {
		if v := intValue(fd, n); v.IsValid() {
			ps = append(ps, probe{what: what, v: v, ok: ok})
		}
	}
	if fd.IsList() {
		if r.hasItems {
			if r.minItems > 0 {
				ps = append(ps, probe{what: "no items", v: protoreflect.Value{}, ok: false})
			}
			ps = append(ps, probe{what: "most items", v: itemList(fd, r.maxItems, false), ok: true},
				probe{what: "one item too many", v: itemList(fd, r.maxItems+1, false), ok: false})
		}
		if r.uniqueProduct {
			ps = append(ps, probe{what: "repeated product", v: itemList(fd, 2, true), ok: false})
		}
		return ps
	}
	switch fd.Kind() {
	case protoreflect.StringKind:
		if r.required {
			str("empty", "", false)
			str("blank", "   ", false)
		}
		if r.optional {
			str("empty", "", true)
		}
		if r.uuid {
			str("not a uuid", "order-1", false)
			str("nil uuid", ids.Nil, false)
			str("uuid without hyphens", strings.ReplaceAll(ids.New(), "-", ""), false)
			str("upper-case uuid", strings.ToUpper(ids.New()), true)
		}
		if r.maxChars > 0 {
			str("at the length limit", " "+strings.Repeat("é", r.maxChars)+" ", true)
			str("past the length limit", strings.Repeat("é", r.maxChars+1), false)
		}
		if r.plain {
			str("control character", "a\tb", false)
		}
		if r.email {
			str("not an email", "ann.example.com", false)
			str("email", "Ann.Lee@Example.COM", true)
		}
		if r.e164 {
			str("not E.164", "0151 2345", false)
			str("E.164", "+49 (151) 234-5678", true)
		}
		if r.country {
			str("lower-case country", "de", false)
			str("country", "DE", true)
		}
		if r.fourDigits {
			str("not 4 digits", "12a4", false)
			str("4 digits", "0042", true)
		}
		if r.requiredForCardOrBank {
			wallet := func(m protoreflect.Message) {
				f.target(m).Set(f.target(m).Descriptor().Fields().ByName("kind"), protoreflect.ValueOfEnum(3))
				f.target(m).Set(f.target(m).Descriptor().Fields().ByName("exp_month"), protoreflect.ValueOfInt32(0))
				f.target(m).Set(f.target(m).Descriptor().Fields().ByName("exp_year"), protoreflect.ValueOfInt32(0))
			}
			str("empty for a CARD", "", false)
			ps = append(ps, probe{what: "empty for a WALLET", v: protoreflect.ValueOfString(""), ok: true, prep: wallet})
		}
	case protoreflect.EnumKind:
		if r.required {
			num("UNSPECIFIED", 0, false)
		}
		if r.enum {
			vals := fd.Enum().Values()
			num("highest defined value", int64(vals.Get(vals.Len()-1).Number()), true)
			num("undefined value", int64(vals.Get(vals.Len()-1).Number())+1, false)
		}
	case protoreflect.MessageKind:
		if r.required {
			ps = append(ps, probe{what: "unset", v: protoreflect.Value{}, ok: false})
		}
	default: // integers
		if r.hasRange {
			num("lowest", r.lo, true)
			num("highest", r.hi, true)
			if r.lo > math.MinInt64 {
				num("below the range", r.lo-1, false)
			}
			if r.hi < math.MaxInt64 {
				num("above the range", r.hi+1, false)
			}
			if r.cardRange {
				wallet := func(m protoreflect.Message) {
					f.target(m).Set(f.target(m).Descriptor().Fields().ByName("kind"), protoreflect.ValueOfEnum(3))
					f.target(m).Set(f.target(m).Descriptor().Fields().ByName("exp_month"), protoreflect.ValueOfInt32(0))
					f.target(m).Set(f.target(m).Descriptor().Fields().ByName("exp_year"), protoreflect.ValueOfInt32(0))
				}
				ps = append(ps, probe{what: "non-zero for a WALLET", v: intValue(fd, r.lo), ok: false, prep: wallet},
					probe{what: "zero for a WALLET", v: intValue(fd, 0), ok: true, prep: wallet})
			}
		}
	}
	return ps
}

// itemList returns n order items with distinct products (or, with repeat, the same product
// twice).
func itemList(fd protoreflect.FieldDescriptor, n int, repeat bool) protoreflect.Value {
	req := (&ordersv1.CreateOrderRequest{}).ProtoReflect()
	l := req.NewField(req.Descriptor().Fields().ByName(fd.Name())).List()
	product := ids.New()
	for i := 0; i < n; i++ {
		if !repeat {
			product = ids.New()
		}
		l.Append(protoreflect.ValueOfMessage((&ordersv1.OrderItem{ProductId: product, Quantity: 1, UnitPriceCents: 100}).ProtoReflect()))
	}
	return protoreflect.ValueOfList(l)
}

// TestProtoRulesAreEnforced derives from every Rules line the values at and just past each
// limit, sends them to the real server in an otherwise valid request, and checks that the
// server refuses exactly the ones the rule forbids, naming the field's path.
func TestProtoRulesAreEnforced(t *testing.T) {
	s := defaultServer(t)
	methods := loadContract(t)
	if len(methods) != 19 {
		t.Fatalf("%d command RPCs in the protos, want 19", len(methods))
	}
	checked := 0
	for _, cm := range methods {
		t.Run(string(cm.method.Name()), func(t *testing.T) {
			for _, f := range cm.fields {
				for _, p := range probes(f) {
					req := baseline(t, cm.method)
					if p.prep != nil {
						p.prep(req.ProtoReflect())
					}
					f.set(req.ProtoReflect(), p.v)
					violated, _ := invoke(t, s, cm, req)
					switch named := names(violated, f.path); {
					case p.ok && named:
						t.Errorf("%s %s: refused (%v) although its Rules allow it", f.path, p.what, violated)
					case !p.ok && !named:
						t.Errorf("%s %s: not refused with a violation of %s (got %v) although its Rules forbid it", f.path, p.what, f.path, violated)
					}
					checked++
				}
			}
		})
	}
	t.Logf("%d probes over %d RPCs", checked, len(methods))
}

// TestWhatTheRulesAllowIsAccepted is the converse: requests whose every field is random but
// inside its Rules must never be refused as invalid, so the server checks nothing that the
// proto comments do not state. Each accepted command's events then go through the relay's and
// the projector's steps (downstream), so nothing the edge accepts is refused after it.
func TestWhatTheRulesAllowIsAccepted(t *testing.T) {
	s := defaultServer(t)
	rm, reg := newReadModels(t), codec.NewRegistry()
	rng := rand.New(rand.NewPCG(20261130, 9))
	accepted := 0
	// Half of the commands address aggregates that exist, so they get past NOT_FOUND and their
	// events reach the downstream check.
	var customers, orders []string
	for range 3 {
		c := registerCustomer(t, s)
		customers = append(customers, c)
		o := ids.New()
		if _, err := s.oc.CreateOrder(ctxT(t), &ordersv1.CreateOrderRequest{OrderId: o, CustomerId: c, Items: items(1)}); err != nil {
			t.Fatal(err)
		}
		orders = append(orders, o)
	}
	existing := func(req proto.Message, method protoreflect.Name) {
		m := req.ProtoReflect()
		if fd := m.Descriptor().Fields().ByName("order_id"); fd != nil && method != "CreateOrder" && rng.IntN(2) == 0 {
			m.Set(fd, protoreflect.ValueOfString(orders[rng.IntN(len(orders))]))
		}
		if fd := m.Descriptor().Fields().ByName("customer_id"); fd != nil && method != "RegisterCustomer" && rng.IntN(2) == 0 {
			m.Set(fd, protoreflect.ValueOfString(customers[rng.IntN(len(customers))]))
		}
	}
	const perMethod = 25
	for _, cm := range loadContract(t) {
		t.Run(string(cm.method.Name()), func(t *testing.T) {
			for i := 0; i < perMethod; i++ {
				req := baseline(t, cm.method)
				for _, f := range cm.fields {
					if v := randomValid(rng, f, req.ProtoReflect()); v.IsValid() {
						f.set(req.ProtoReflect(), v)
					}
				}
				existing(req, cm.method.Name())
				violated, invalid, id := invokeID(t, s, cm, req)
				if invalid {
					t.Fatalf("request within every Rules line refused: %v\n%v", violated, req)
				}
				if id != "" {
					downstream(t, env(t).store, reg, rm, id)
					accepted++
				}
			}
		})
	}
	t.Logf("%d accepted commands went through the downstream steps", accepted)
	if accepted == 0 {
		t.Fatal("no random command was accepted: the downstream check checked nothing")
	}
}

// randomValid returns a random value that f's rules allow (an invalid Value: keep the
// baseline's).
func randomValid(rng *rand.Rand, f ruledField, m protoreflect.Message) protoreflect.Value {
	r, fd := f.rules, f.fd
	if fd.IsList() {
		if !r.hasItems {
			return protoreflect.Value{}
		}
		n := max(r.minItems, 1+rng.IntN(r.maxItems))
		l := itemList(fd, n, false).List()
		for i := 0; i < l.Len(); i++ {
			it := l.Get(i).Message().Interface().(*ordersv1.OrderItem)
			it.Quantity = int32(1 + rng.IntN(10000))
			it.UnitPriceCents = rng.Int64N(10_000_000_001)
		}
		return protoreflect.ValueOfList(l)
	}
	if r.optional && fd.Kind() == protoreflect.StringKind && rng.IntN(4) == 0 {
		return protoreflect.ValueOfString("")
	}
	if r.optional && fd.HasPresence() && rng.IntN(4) != 0 {
		return protoreflect.Value{} // mostly unset: a random expected_version is a conflict
	}
	switch fd.Kind() {
	case protoreflect.StringKind:
		switch {
		case r.uuid:
			if rng.IntN(2) == 0 {
				return protoreflect.ValueOfString(strings.ToUpper(ids.New()))
			}
			return protoreflect.ValueOfString(ids.New())
		case r.email:
			return protoreflect.ValueOfString(validEmails[rng.IntN(len(validEmails))])
		case r.e164:
			return protoreflect.ValueOfString("+" + string(rune('1'+rng.IntN(9))) + digits(rng, 7+rng.IntN(8)))
		case r.country:
			return protoreflect.ValueOfString(string(rune('A'+rng.IntN(26))) + string(rune('A'+rng.IntN(26))))
		case r.fourDigits:
			return protoreflect.ValueOfString(digits(rng, 4))
		case r.maxChars > 0:
			return protoreflect.ValueOfString(text(rng, r.maxChars))
		}
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		return protoreflect.ValueOfEnum(vals.Get(1 + rng.IntN(vals.Len()-1)).Number())
	case protoreflect.MessageKind:
		return protoreflect.Value{}
	default:
		if !r.hasRange {
			return protoreflect.Value{}
		}
		if r.cardRange && f.sibling(m, "kind").Enum() != protoreflect.EnumNumber(ordersv1.PaymentMethodKind_PAYMENT_METHOD_KIND_CARD) {
			return intValue(fd, 0)
		}
		if r.lo == 0 && r.hi == math.MaxInt64 {
			return intValue(fd, rng.Int64())
		}
		return intValue(fd, r.lo+rng.Int64N(r.hi-r.lo+1))
	}
	return protoreflect.Value{}
}
