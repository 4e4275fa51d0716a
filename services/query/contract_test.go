package query_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/protorules"
)

// TestQueryProtoRulesAreEnforced holds the query service to the Rules lines of its protos, as
// the command service's contract test does: every value at and just past a stated limit is sent
// to the real server in an otherwise valid request, and exactly the forbidden ones are refused
// with INVALID_ARGUMENT naming the field; random requests within the rules are never refused.
func TestQueryProtoRulesAreEnforced(t *testing.T) {
	s, e := defaultServer(t)
	methods, problems, err := protorules.Load("../../proto", "orders/v1/order_query.proto", "orders/v1/customer_query.proto")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	if len(methods) != 8 {
		t.Fatalf("%d query RPCs in the protos, want 8", len(methods))
	}
	existing, cust := ids.New(), ids.New()
	appendOrder(t, e.store, existing, lifecycle(existing, ids.New(), time.Now())...)
	registerCustomer(t, e.store, cust)
	baseline := func(t *testing.T, md protoreflect.MethodDescriptor) proto.Message {
		switch md.Name() {
		case "GetOrder":
			return &ordersv1.GetOrderRequest{OrderId: existing}
		case "GetOrderHistory":
			return &ordersv1.GetOrderHistoryRequest{OrderId: existing}
		case "GetOrderAt":
			return &ordersv1.GetOrderAtRequest{OrderId: existing, Point: &ordersv1.GetOrderAtRequest_Version{Version: 1}}
		case "ListOrdersByCustomer":
			return &ordersv1.ListOrdersByCustomerRequest{CustomerId: ids.New()}
		case "ListOrdersByStatus":
			return &ordersv1.ListOrdersByStatusRequest{Status: ordersv1.OrderStatus_ORDER_STATUS_CREATED}
		case "GetCustomer":
			return &ordersv1.GetCustomerRequest{CustomerId: ids.New()}
		case "GetCustomerHistory":
			return &ordersv1.GetCustomerHistoryRequest{CustomerId: cust}
		case "GetCustomerAt":
			return &ordersv1.GetCustomerAtRequest{CustomerId: cust, Point: &ordersv1.GetCustomerAtRequest_Version{Version: 1}}
		}
		t.Fatalf("no baseline for %s", md.Name())
		return nil
	}
	// call returns the violated field paths when the server answered INVALID_ARGUMENT.
	call := func(m protorules.Method, req proto.Message) []string {
		t.Helper()
		mt, err := protoregistry.GlobalTypes.FindMessageByName(m.Desc.Output().FullName())
		if err != nil {
			t.Fatal(err)
		}
		// Short: a valid min_version past the order's version waits for the deadline.
		ctx, cancel := context.WithTimeout(ctxT(t), time.Second)
		defer cancel()
		err = s.conn.Invoke(ctx, m.FullName, req, mt.New().Interface())
		if c := status.Code(err); c == codes.Internal || c == codes.Unknown {
			t.Errorf("%s %v: %v (an error must map to a precise code)", m.FullName, req, err)
		}
		violated, invalid := protorules.FieldViolations(err)
		if invalid && len(violated) == 0 {
			t.Errorf("%s: INVALID_ARGUMENT without field violations: %v", m.FullName, err)
		}
		return violated
	}

	rng := rand.New(rand.NewPCG(11, 30))
	probes := 0
	for _, m := range methods {
		t.Run(string(m.Desc.Name()), func(t *testing.T) {
			for _, f := range m.Fields {
				for _, p := range f.Probes(rng, baseline(t, m.Desc).ProtoReflect()) {
					req := baseline(t, m.Desc)
					f.Set(req.ProtoReflect(), p.Value)
					switch named := protorules.Violates(call(m, req), f.Path); {
					case p.OK && named:
						t.Errorf("%s %s: refused although its Rules allow it", f.Path, p.What)
					case !p.OK && !named:
						t.Errorf("%s %s: not refused with a violation of %s although its Rules forbid it", f.Path, p.What, f.Path)
					}
					probes++
				}
			}
			for range 10 {
				req := baseline(t, m.Desc)
				for _, f := range m.Fields {
					if v := f.RandomValid(rng, req.ProtoReflect()); v.IsValid() {
						f.Set(req.ProtoReflect(), v)
					}
				}
				if violated := call(m, req); violated != nil {
					t.Errorf("request within every Rules line refused: %v\n%v", violated, req)
				}
			}
		})
	}
	t.Logf("%d probes over %d query RPCs", probes, len(methods))
	if probes < 45 { // 51 when written: a drop means rules stopped being probed
		t.Fatalf("only %d probes", probes)
	}
}
