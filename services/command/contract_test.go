package command_test

import (
	"math/rand/v2"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/protorules"
)

// protoRoot is the folder holding orders/v1/*.proto, relative to this package.
const protoRoot = "../../proto"

// loadContract reads the Rules lines of the command protos; a field without one fails the test.
func loadContract(t *testing.T) []protorules.Method {
	t.Helper()
	methods, problems, err := protorules.Load(protoRoot, "orders/v1/order_command.proto", "orders/v1/customer_command.proto")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	return methods
}

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
func invoke(t *testing.T, s *server, cm protorules.Method, req proto.Message) (violated []string, invalid bool) {
	t.Helper()
	violated, invalid, _ = invokeID(t, s, cm, req)
	return violated, invalid
}

// invokeID is invoke that also returns the aggregate id of a command that succeeded.
func invokeID(t *testing.T, s *server, cm protorules.Method, req proto.Message) (violated []string, invalid bool, id string) {
	t.Helper()
	resp := newMessage(t, cm.Desc.Output())
	err := s.conn.Invoke(ctxT(t), cm.FullName, req, resp)
	if err == nil {
		r := resp.ProtoReflect()
		return nil, false, r.Get(r.Descriptor().Fields().ByName("aggregate_id")).String()
	}
	if c := status.Code(err); c == codes.Internal || c == codes.Unknown {
		t.Errorf("%s %v: %v (an edge error must map to a precise code)", cm.FullName, req, err)
	}
	violated, invalid = protorules.FieldViolations(err)
	if invalid && len(violated) == 0 {
		t.Errorf("%s: InvalidArgument without field violations: %v", cm.FullName, err)
	}
	return violated, invalid, ""
}

// TestProtoRulesAreEnforced derives from every Rules line the values at and just past each
// limit, sends them to the real server in an otherwise valid request, and checks that the
// server refuses exactly the ones the rule forbids, naming the field's path.
func TestProtoRulesAreEnforced(t *testing.T) {
	s := defaultServer(t)
	methods := loadContract(t)
	rng := rand.New(rand.NewPCG(7, 7))
	if len(methods) != 20 {
		t.Fatalf("%d command RPCs in the protos, want 20", len(methods))
	}
	checked := 0
	for _, cm := range methods {
		t.Run(string(cm.Desc.Name()), func(t *testing.T) {
			for _, f := range cm.Fields {
				for _, p := range f.Probes(rng, baseline(t, cm.Desc).ProtoReflect()) {
					req := baseline(t, cm.Desc)
					if p.Prep != nil {
						p.Prep(req.ProtoReflect())
					}
					f.Set(req.ProtoReflect(), p.Value)
					violated, invalid := invoke(t, s, cm, req)
					switch named := protorules.Violates(violated, f.Path); {
					case p.OK && invalid:
						t.Errorf("%s %s: refused (%v) although every field is within its Rules", f.Path, p.What, violated)
					case !p.OK && !named:
						t.Errorf("%s %s: not refused with a violation of %s (got %v) although its Rules forbid it", f.Path, p.What, f.Path, violated)
					}
					checked++
				}
			}
		})
	}
	t.Logf("%d probes over %d RPCs", checked, len(methods))
	if checked < 450 { // 492 when written: a drop means rules stopped being probed
		t.Fatalf("only %d probes: the Rules lines lost clauses or the grammar stopped matching them", checked)
	}
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
		t.Run(string(cm.Desc.Name()), func(t *testing.T) {
			for i := 0; i < perMethod; i++ {
				req := baseline(t, cm.Desc)
				for _, f := range cm.Fields {
					if v := f.RandomValid(rng, req.ProtoReflect()); v.IsValid() {
						f.Set(req.ProtoReflect(), v)
					}
				}
				existing(req, cm.Desc.Name())
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
	if accepted < 50 { // about 95 when written
		t.Fatalf("only %d random commands accepted: the downstream check checked too little", accepted)
	}
}
