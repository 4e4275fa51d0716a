package command_test

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/services/command/internal/app"
	"github.com/ordersys/ordersys/services/command/internal/grpcapi"
)

// commandResponse is what every command response offers.
type commandResponse interface {
	GetAggregateId() string
	GetVersion() int64
	GetEventIds() []string
}

func items(n int) []*ordersv1.OrderItem {
	out := make([]*ordersv1.OrderItem, n)
	for i := range out {
		out[i] = &ordersv1.OrderItem{ProductId: ids.New(), Quantity: int32(i + 1), UnitPriceCents: int64(100*i + 99)}
	}
	return out
}

func i64(v int64) *int64 { return &v }

// loadEvents reads every event of an aggregate from the store.
func loadEvents(t testing.TB, st es.EventStore, id string) []es.Envelope {
	t.Helper()
	var out []es.Envelope
	if _, err := st.Load(ctxT(t), id, 1, func(e es.Envelope) error { out = append(out, e); return nil }); err != nil {
		t.Fatalf("load %s: %v", id, err)
	}
	return out
}

// check returns an assertion of a successful command response.
func check(t testing.TB, id string, version int64, nEvents int) func(commandResponse, error) commandResponse {
	t.Helper()
	return func(resp commandResponse, err error) commandResponse {
		t.Helper()
		return checkResp(t, resp, err, id, version, nEvents)
	}
}

func checkResp(t testing.TB, resp commandResponse, err error, id string, version int64, nEvents int) commandResponse {
	t.Helper()
	if err != nil {
		t.Fatalf("want version %d of %s, got %v", version, id, err)
	}
	if resp.GetAggregateId() != id || resp.GetVersion() != version || len(resp.GetEventIds()) != nEvents {
		t.Fatalf("response %v, want aggregate %s version %d with %d event ids", resp, id, version, nEvents)
	}
	return resp
}

// wantCode asserts err is a status with the code and returns it.
func wantCode(t testing.TB, err error, code codes.Code) *status.Status {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("want %v, got %v", code, err)
	}
	return st
}

// badFields returns the fields of the BadRequest detail of an InvalidArgument status.
func badFields(t testing.TB, err error) []string {
	t.Helper()
	st := wantCode(t, err, codes.InvalidArgument)
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	if len(fields) == 0 {
		t.Fatalf("InvalidArgument without BadRequest field violations: %v", st)
	}
	slices.Sort(fields)
	return fields
}

// preconditionType returns the type of the PreconditionFailure detail of a FailedPrecondition.
func preconditionType(t testing.TB, err error) string {
	t.Helper()
	st := wantCode(t, err, codes.FailedPrecondition)
	for _, d := range st.Details() {
		if pf, ok := d.(*errdetails.PreconditionFailure); ok && len(pf.GetViolations()) == 1 {
			return pf.GetViolations()[0].GetType()
		}
	}
	t.Fatalf("FailedPrecondition without a PreconditionFailure detail: %v", st)
	return ""
}

func createOrder(t testing.TB, s *server, ctx context.Context) string {
	t.Helper()
	id := ids.New()
	resp, err := s.oc.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: id, CustomerId: s.activeCustomer(t), Items: items(2)})
	checkResp(t, resp, err, id, 1, 1)
	return id
}

func TestOrderCommands(t *testing.T) {
	s := defaultServer(t)
	ctx := ctxT(t)

	t.Run("lifecycle", func(t *testing.T) {
		id, customerID := ids.New(), s.activeCustomer(t)
		var all []string
		r := check(t, id, 1, 1)(s.oc.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: id, CustomerId: customerID, Items: items(2)}))
		all = append(all, r.GetEventIds()...)
		r = check(t, id, 2, 1)(s.oc.UpdateOrderItems(ctx, &ordersv1.UpdateOrderItemsRequest{OrderId: id, Items: items(3), Reason: "more"}))
		all = append(all, r.GetEventIds()...)
		r = check(t, id, 3, 1)(s.oc.ConfirmOrder(ctx, &ordersv1.ConfirmOrderRequest{OrderId: id, ExpectedVersion: i64(2)}))
		all = append(all, r.GetEventIds()...)
		r = check(t, id, 4, 1)(s.oc.ShipOrder(ctx, &ordersv1.ShipOrderRequest{OrderId: id, TrackingNumber: "1Z999", Carrier: "UPS"}))
		all = append(all, r.GetEventIds()...)
		r = check(t, id, 5, 1)(s.oc.DeliverOrder(ctx, &ordersv1.DeliverOrderRequest{OrderId: id, Signature: "J. Doe"}))
		all = append(all, r.GetEventIds()...)

		evs := loadEvents(t, s.store, id)
		var gotIDs, gotTypes []string
		for _, e := range evs {
			gotIDs, gotTypes = append(gotIDs, e.EventID), append(gotTypes, e.EventType)
		}
		if !slices.Equal(gotIDs, all) {
			t.Fatalf("stored event ids %v, responses gave %v", gotIDs, all)
		}
		want := []string{order.EventOrderCreated, order.EventOrderItemsUpdated, order.EventOrderConfirmed, order.EventOrderShipped, order.EventOrderDelivered}
		if !slices.Equal(gotTypes, want) {
			t.Fatalf("event types %v, want %v", gotTypes, want)
		}
		o, err := s.orders.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if o.Status != order.StatusDelivered || o.CustomerID != customerID || len(o.Items) != 3 || o.TrackingNumber != "1Z999" || o.DeliverySignature != "J. Doe" {
			t.Fatalf("state %+v", o)
		}
	})

	t.Run("cancel records the user", func(t *testing.T) {
		id := createOrder(t, s, ctx)
		uctx := metadata.AppendToOutgoingContext(ctx, grpcapi.MetadataUserID, "user-42")
		check(t, id, 2, 1)(s.oc.CancelOrder(uctx, &ordersv1.CancelOrderRequest{OrderId: id, Reason: "changed my mind"}))
		evs := loadEvents(t, s.store, id)
		c, ok := evs[1].Event.(order.OrderCancelled)
		if !ok || c.Reason != "changed my mind" || c.CancelledBy != "user-42" || evs[1].UserID != "user-42" {
			t.Fatalf("cancel event %+v (%+v)", evs[1], evs[1].Event)
		}
	})
}

// call adapts a (response, error) pair for check.
func call[R commandResponse](r R, err error) (commandResponse, error) { return r, err }

func TestCustomerCommands(t *testing.T) {
	s := defaultServer(t)
	ctx := ctxT(t)
	id := ids.New()
	home, work, card := ids.New(), ids.New(), ids.New()
	c := s.cc
	addr := func(aid, line1 string) *ordersv1.Address {
		return &ordersv1.Address{AddressId: aid, Label: "home", Line1: line1, City: "Berlin", PostalCode: "10115", CountryCode: "DE"}
	}
	steps := []struct {
		name string
		do   func() (commandResponse, error)
	}{
		{"register", func() (commandResponse, error) {
			return call(c.RegisterCustomer(ctx, &ordersv1.RegisterCustomerRequest{CustomerId: id, Email: "ada@example.com", FirstName: "Ada", LastName: "Lovelace", Phone: "+4930123456"}))
		}},
		{"update profile", func() (commandResponse, error) {
			return call(c.UpdateProfile(ctx, &ordersv1.UpdateProfileRequest{CustomerId: id, FirstName: "Ada", LastName: "King"}))
		}},
		{"change email", func() (commandResponse, error) {
			return call(c.ChangeEmail(ctx, &ordersv1.ChangeEmailRequest{CustomerId: id, Email: "ada.king@example.com"}))
		}},
		{"change phone", func() (commandResponse, error) {
			return call(c.ChangePhone(ctx, &ordersv1.ChangePhoneRequest{CustomerId: id, Phone: "+4930654321"}))
		}},
		{"add address", func() (commandResponse, error) {
			return call(c.AddAddress(ctx, &ordersv1.AddAddressRequest{CustomerId: id, Address: addr(home, "Unter den Linden 1")}))
		}},
		{"add second address", func() (commandResponse, error) {
			return call(c.AddAddress(ctx, &ordersv1.AddAddressRequest{CustomerId: id, Address: addr(work, "Friedrichstr. 2")}))
		}},
		{"update address", func() (commandResponse, error) {
			return call(c.UpdateAddress(ctx, &ordersv1.UpdateAddressRequest{CustomerId: id, Address: addr(home, "Unter den Linden 3")}))
		}},
		{"remove address", func() (commandResponse, error) {
			return call(c.RemoveAddress(ctx, &ordersv1.RemoveAddressRequest{CustomerId: id, AddressId: work}))
		}},
		{"add payment method", func() (commandResponse, error) {
			return call(c.AddPaymentMethod(ctx, &ordersv1.AddPaymentMethodRequest{CustomerId: id, PaymentMethod: &ordersv1.PaymentMethod{
				PaymentMethodId: card, Kind: ordersv1.PaymentMethodKind_PAYMENT_METHOD_KIND_CARD, Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: int32(time.Now().Year() + 2),
			}}))
		}},
		{"remove payment method", func() (commandResponse, error) {
			return call(c.RemovePaymentMethod(ctx, &ordersv1.RemovePaymentMethodRequest{CustomerId: id, PaymentMethodId: card}))
		}},
		{"upgrade tier", func() (commandResponse, error) {
			return call(c.UpgradeTier(ctx, &ordersv1.UpgradeTierRequest{CustomerId: id, Tier: ordersv1.CustomerTier_CUSTOMER_TIER_GOLD}))
		}},
		{"suspend", func() (commandResponse, error) {
			return call(c.SuspendCustomer(ctx, &ordersv1.SuspendCustomerRequest{CustomerId: id, Reason: "chargeback"}))
		}},
		{"reactivate", func() (commandResponse, error) {
			return call(c.ReactivateCustomer(ctx, &ordersv1.ReactivateCustomerRequest{CustomerId: id}))
		}},
		{"deactivate", func() (commandResponse, error) {
			return call(c.DeactivateCustomer(ctx, &ordersv1.DeactivateCustomerRequest{CustomerId: id, Reason: "closed on request"}))
		}},
	}
	for i, st := range steps {
		resp, err := st.do()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		checkResp(t, resp, err, id, int64(i+1), 1)
	}
	got, err := s.customers.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != customer.StatusDeactivated || got.Tier != customer.TierGold || got.Email != "ada.king@example.com" ||
		got.LastName != "King" || got.Phone != "+4930654321" || len(got.Addresses) != 1 || got.Addresses[0].Line1 != "Unter den Linden 3" ||
		len(got.PaymentMethods) != 0 || got.Version() != int64(len(steps)) {
		t.Fatalf("state %+v", got)
	}
	// The replayed log gives the same state as the handler's load (which may use a snapshot).
	replayed := customer.New(id)
	if err := es.Replay(replayed, loadEvents(t, s.store, id)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(replayed, got) {
		t.Fatalf("replay %+v\nload   %+v", replayed, got)
	}
}

func TestErrorCodes(t *testing.T) {
	s := defaultServer(t)
	ctx := ctxT(t)
	id := createOrder(t, s, ctx)
	customerID := ids.New()
	if _, err := s.cc.RegisterCustomer(ctx, &ordersv1.RegisterCustomerRequest{CustomerId: customerID, Email: "bob@example.com", FirstName: "Bob", LastName: "B"}); err != nil {
		t.Fatal(err)
	}

	t.Run("InvalidArgument lists every bad field", func(t *testing.T) {
		tests := []struct {
			name string
			do   func() error
			want []string
		}{
			{"create order", func() error {
				_, err := s.oc.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: "nope", CustomerId: "", Items: []*ordersv1.OrderItem{
					{ProductId: ids.New(), Quantity: 0, UnitPriceCents: -1},
				}})
				return err
			}, []string{"customer_id", "items[0].quantity", "items[0].unit_price_cents", "order_id"}},
			{"empty items and bad command id", func() error {
				_, err := s.oc.UpdateOrderItems(ctx, &ordersv1.UpdateOrderItemsRequest{OrderId: id, CommandId: "x", ExpectedVersion: i64(-1)})
				return err
			}, []string{"command_id", "expected_version", "items"}},
			{"order id of a non-creating command", func() error {
				_, err := s.oc.ShipOrder(ctx, &ordersv1.ShipOrderRequest{OrderId: "12", Carrier: "UPS"})
				return err
			}, []string{"order_id", "tracking_number"}},
			{"nested address fields", func() error {
				_, err := s.cc.AddAddress(ctx, &ordersv1.AddAddressRequest{CustomerId: customerID, Address: &ordersv1.Address{
					AddressId: ids.New(), Line1: "x", City: "y", PostalCode: "1", CountryCode: "de",
				}})
				return err
			}, []string{"address.country_code"}},
			{"missing payment method", func() error {
				_, err := s.cc.AddPaymentMethod(ctx, &ordersv1.AddPaymentMethodRequest{CustomerId: customerID})
				return err
			}, []string{"payment_method.brand", "payment_method.kind", "payment_method.payment_method_id"}},
			{"unknown tier", func() error {
				_, err := s.cc.UpgradeTier(ctx, &ordersv1.UpgradeTierRequest{CustomerId: customerID, Tier: 99})
				return err
			}, []string{"tier"}},
			{"user id too long", func() error {
				uctx := metadata.AppendToOutgoingContext(ctx, grpcapi.MetadataUserID, strings.Repeat("u", 101))
				_, err := s.oc.CancelOrder(uctx, &ordersv1.CancelOrderRequest{OrderId: id})
				return err
			}, []string{grpcapi.MetadataUserID}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if got := badFields(t, tt.do()); !slices.Equal(got, tt.want) {
					t.Fatalf("fields %v, want %v", got, tt.want)
				}
			})
		}
		if n := len(loadEvents(t, s.store, id)); n != 1 {
			t.Fatalf("invalid commands appended events: %d events", n)
		}
	})

	t.Run("FailedPrecondition carries the rule", func(t *testing.T) {
		_, err := s.oc.ShipOrder(ctx, &ordersv1.ShipOrderRequest{OrderId: id, TrackingNumber: "T", Carrier: "C"})
		if typ := preconditionType(t, err); typ != order.RuleShipRequiresConfirmed {
			t.Fatalf("rule %q", typ)
		}
		if msg := status.Convert(err).Message(); !strings.Contains(msg, "only a CONFIRMED order can ship") {
			t.Fatalf("message %q", msg)
		}
	})

	t.Run("Aborted on expected version mismatch", func(t *testing.T) {
		_, err := s.oc.ConfirmOrder(ctx, &ordersv1.ConfirmOrderRequest{OrderId: id, ExpectedVersion: i64(7)})
		st := wantCode(t, err, codes.Aborted)
		if !strings.Contains(st.Message(), "expected version 7, actual 1") {
			t.Fatalf("message %q", st.Message())
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		_, err := s.oc.ConfirmOrder(ctx, &ordersv1.ConfirmOrderRequest{OrderId: ids.New()})
		wantCode(t, err, codes.NotFound)
		_, err = s.cc.SuspendCustomer(ctx, &ordersv1.SuspendCustomerRequest{CustomerId: ids.New(), Reason: "r"})
		wantCode(t, err, codes.NotFound)
		_, err = s.cc.RemoveAddress(ctx, &ordersv1.RemoveAddressRequest{CustomerId: customerID, AddressId: ids.New()})
		wantCode(t, err, codes.NotFound)
		_, err = s.cc.RemovePaymentMethod(ctx, &ordersv1.RemovePaymentMethodRequest{CustomerId: customerID, PaymentMethodId: ids.New()})
		wantCode(t, err, codes.NotFound)
	})

	t.Run("AlreadyExists", func(t *testing.T) {
		_, err := s.oc.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: id, CustomerId: s.activeCustomer(t), Items: items(1)})
		wantCode(t, err, codes.AlreadyExists)
		_, err = s.cc.RegisterCustomer(ctx, &ordersv1.RegisterCustomerRequest{CustomerId: customerID, Email: "x@example.com", FirstName: "X", LastName: "Y"})
		wantCode(t, err, codes.AlreadyExists)
	})

	t.Run("Unavailable when the store is unreachable", func(t *testing.T) {
		e := env(t)
		dead, err := cql.Connect(cqltest.SessionConfig(e.keyspace))
		if err != nil {
			t.Fatal(err)
		}
		dead.Close()
		ds := startServer(t, cql.NewEventStore(dead, codec.NewRegistry(), cql.Options{}), dead, app.Options{})
		_, err = ds.oc.ConfirmOrder(ctx, &ordersv1.ConfirmOrderRequest{OrderId: id})
		wantCode(t, err, codes.Unavailable)
		_, err = ds.oc.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: ids.New(), CustomerId: s.activeCustomer(t), Items: items(1), CommandId: ids.New()})
		wantCode(t, err, codes.Unavailable)
		if got := commandCount(t, ds, "ConfirmOrder", app.OutcomeUnavailable); got != 1 {
			t.Fatalf("unavailable commands counted %v", got)
		}

		// The health watcher reports the dead store as NOT_SERVING.
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		probe := func(ctx context.Context) error { _, err := ds.store.Head(ctx, ids.New()); return err }
		go grpcapi.WatchHealth(wctx, ds.grpc.Health, probe, 20*time.Millisecond, quietLogger)
		hc := healthpb.NewHealthClient(ds.conn)
		waitFor(t, func() bool {
			r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "orders.v1.OrderCommandService"})
			return err == nil && r.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING
		})
	})
}

// commandCount reads ordersys_commands_total{command, outcome} from the server's registry.
func commandCount(t testing.TB, s *server, command, outcome string) float64 {
	t.Helper()
	mfs, err := s.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "ordersys_commands_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["command"] == command && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHealthAndReflection(t *testing.T) {
	s := defaultServer(t)
	ctx := ctxT(t)
	hc := healthpb.NewHealthClient(s.conn)
	for _, name := range grpcapi.ServiceNames {
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health of %q: %v %v", name, r, err)
		}
	}
	info := s.grpc.GRPC.GetServiceInfo()
	for _, name := range []string{"orders.v1.OrderCommandService", "orders.v1.CustomerCommandService", "grpc.reflection.v1.ServerReflection", "grpc.health.v1.Health"} {
		if _, ok := info[name]; !ok {
			t.Errorf("service %s not registered (have %v)", name, info)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.grpc.GracefulStop(sctx); err != nil {
		t.Fatal(err)
	}
	r, err := s.grpc.Health.Check(ctx, &healthpb.HealthCheckRequest{Service: "orders.v1.OrderCommandService"})
	if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("after stop: %v %v", r, err)
	}
}

func TestMetadataIsStored(t *testing.T) {
	s := defaultServer(t)
	ctx := ctxT(t)

	t.Run("given correlation id, user id and trace", func(t *testing.T) {
		tctx, span := otel.Tracer("client").Start(ctx, "client call")
		defer span.End()
		tctx = metadata.AppendToOutgoingContext(tctx, grpcapi.MetadataCorrelationID, "corr-123", grpcapi.MetadataUserID, "alice")
		id, cmdID := ids.New(), ids.New()
		var header metadata.MD
		_, err := s.oc.CreateOrder(tctx, &ordersv1.CreateOrderRequest{OrderId: id, CustomerId: s.activeCustomer(t), Items: items(1), CommandId: cmdID}, grpc.Header(&header))
		if err != nil {
			t.Fatal(err)
		}
		if got := header.Get(grpcapi.MetadataCorrelationID); !slices.Equal(got, []string{"corr-123"}) {
			t.Fatalf("response header %s = %v", grpcapi.MetadataCorrelationID, got)
		}
		e := loadEvents(t, s.store, id)[0]
		traceID := span.SpanContext().TraceID().String()
		if e.CorrelationID != "corr-123" || e.UserID != "alice" || e.CausationID != cmdID ||
			!strings.HasPrefix(e.TraceParent, "00-"+traceID+"-") || e.Metadata["command"] != "CreateOrder" {
			t.Fatalf("stored envelope %+v, want correlation corr-123, user alice, causation %s, trace %s", e, cmdID, traceID)
		}
		// The call's server span carries the ids that find this command's trace.
		want := map[string]string{"correlation_id": "corr-123", "aggregate_id": id, "command_id": cmdID, "causation_id": cmdID}
		if got := serverSpanAttrs(t, span.SpanContext().TraceID()); !maps.Equal(subset(got, want), want) {
			t.Fatalf("server span attributes %v, want %v", got, want)
		}
	})

	t.Run("generated correlation and causation ids", func(t *testing.T) {
		id := ids.New()
		var header metadata.MD
		_, err := s.oc.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: id, CustomerId: s.activeCustomer(t), Items: items(1)}, grpc.Header(&header))
		if err != nil {
			t.Fatal(err)
		}
		got := header.Get(grpcapi.MetadataCorrelationID)
		if len(got) != 1 || !ids.Valid(got[0]) {
			t.Fatalf("generated correlation id %v", got)
		}
		e := loadEvents(t, s.store, id)[0]
		if e.CorrelationID != got[0] || !ids.Valid(e.CausationID) || e.UserID != "" || e.TraceParent == "" {
			t.Fatalf("stored envelope %+v", e)
		}
	})

	t.Run("correlation id echoed on errors too", func(t *testing.T) {
		var header metadata.MD
		tctx, span := otel.Tracer("client").Start(ctx, "client call")
		defer span.End()
		mctx := metadata.AppendToOutgoingContext(tctx, grpcapi.MetadataCorrelationID, "corr-err")
		_, err := s.oc.ConfirmOrder(mctx, &ordersv1.ConfirmOrderRequest{OrderId: ids.New()}, grpc.Header(&header))
		wantCode(t, err, codes.NotFound)
		if got := header.Get(grpcapi.MetadataCorrelationID); !slices.Equal(got, []string{"corr-err"}) {
			t.Fatalf("response header %s = %v", grpcapi.MetadataCorrelationID, got)
		}
		if got := serverSpanAttrs(t, span.SpanContext().TraceID()); got["correlation_id"] != "corr-err" {
			t.Fatalf("server span of a failed call: attributes %v, want correlation_id corr-err", got)
		}
	})
}

// serverSpanAttrs waits for the server span of trace id to end and returns its attributes.
func serverSpanAttrs(t *testing.T, id trace.TraceID) map[string]string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, sp := range recordedSpans.Ended() {
			if sp.SpanContext().TraceID() == id && sp.SpanKind() == trace.SpanKindServer {
				attrs := map[string]string{}
				for _, kv := range sp.Attributes() {
					attrs[string(kv.Key)] = kv.Value.Emit()
				}
				return attrs
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no server span of trace %s ended", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// subset returns the entries of m whose keys are in keys.
func subset(m, keys map[string]string) map[string]string {
	out := map[string]string{}
	for k := range keys {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return out
}

func TestIdempotency(t *testing.T) {
	s := defaultServer(t)
	ctx := ctxT(t)

	t.Run("same command id twice returns the first outcome", func(t *testing.T) {
		id, cmdID := ids.New(), ids.New()
		req := &ordersv1.CreateOrderRequest{OrderId: id, CustomerId: s.activeCustomer(t), Items: items(2), CommandId: cmdID}
		first, err := s.oc.CreateOrder(ctx, req)
		checkResp(t, first, err, id, 1, 1)
		again, err := s.oc.CreateOrder(ctx, req)
		if err != nil || !proto.Equal(first, again) {
			t.Fatalf("repeat: %v %v, want %v", again, err, first)
		}

		upd := &ordersv1.UpdateOrderItemsRequest{OrderId: id, Items: items(1), CommandId: ids.New(), ExpectedVersion: i64(1)}
		u1, err := s.oc.UpdateOrderItems(ctx, upd)
		checkResp(t, u1, err, id, 2, 1)
		check(t, id, 3, 1)(s.oc.ConfirmOrder(ctx, &ordersv1.ConfirmOrderRequest{OrderId: id}))
		// Repeated after the order moved on, with a now stale expected version: still the
		// first outcome, nothing appended.
		u2, err := s.oc.UpdateOrderItems(ctx, upd)
		if err != nil || !proto.Equal(u1, u2) {
			t.Fatalf("repeat: %v %v, want %v", u2, err, u1)
		}
		if n := len(loadEvents(t, s.store, id)); n != 3 {
			t.Fatalf("%d events, want 3", n)
		}
		if got := commandCount(t, s, "UpdateOrderItems", app.OutcomeDuplicate); got != 1 {
			t.Fatalf("duplicates counted %v", got)
		}
	})

	t.Run("same command id with other content", func(t *testing.T) {
		id, cmdID := ids.New(), ids.New()
		_, err := s.oc.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: id, CustomerId: s.activeCustomer(t), Items: items(1), CommandId: cmdID})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.oc.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: id, CustomerId: s.activeCustomer(t), Items: items(1), CommandId: cmdID})
		if got := badFields(t, err); !slices.Equal(got, []string{"command_id"}) {
			t.Fatalf("fields %v", got)
		}
		// Another RPC on the same aggregate with the same command id is other content too.
		_, err = s.oc.ConfirmOrder(ctx, &ordersv1.ConfirmOrderRequest{OrderId: id, CommandId: cmdID})
		if got := badFields(t, err); !slices.Equal(got, []string{"command_id"}) {
			t.Fatalf("fields %v", got)
		}
	})

	t.Run("a rejected command repeated is rejected the same way", func(t *testing.T) {
		id := createOrder(t, s, ctx)
		ship := &ordersv1.ShipOrderRequest{OrderId: id, TrackingNumber: "T-1", Carrier: "DHL", CommandId: ids.New()}
		_, err1 := s.oc.ShipOrder(ctx, ship)
		if typ := preconditionType(t, err1); typ != order.RuleShipRequiresConfirmed {
			t.Fatalf("rule %q", typ)
		}
		// Now the order could ship, but the command id already has its outcome.
		check(t, id, 2, 1)(s.oc.ConfirmOrder(ctx, &ordersv1.ConfirmOrderRequest{OrderId: id}))
		_, err2 := s.oc.ShipOrder(ctx, ship)
		if typ := preconditionType(t, err2); typ != order.RuleShipRequiresConfirmed || status.Convert(err2).Message() != status.Convert(err1).Message() {
			t.Fatalf("repeat gave %v, first %v", err2, err1)
		}
		other := proto.Clone(ship).(*ordersv1.ShipOrderRequest)
		other.Carrier = "UPS"
		_, err := s.oc.ShipOrder(ctx, other)
		if got := badFields(t, err); !slices.Equal(got, []string{"command_id"}) {
			t.Fatalf("fields %v", got)
		}
		if n := len(loadEvents(t, s.store, id)); n != 2 {
			t.Fatalf("%d events, want 2", n)
		}
		// A fresh command id ships it.
		ship.CommandId = ids.New()
		check(t, id, 3, 1)(s.oc.ShipOrder(ctx, ship))
	})
}

func TestSnapshots(t *testing.T) {
	s := defaultServer(t) // snapshot every 10 events
	ctx := ctxT(t)
	id := createOrder(t, s, ctx)
	for v := int64(2); v <= 25; v++ {
		check(t, id, v, 1)(s.oc.UpdateOrderItems(ctx, &ordersv1.UpdateOrderItemsRequest{OrderId: id, Items: items(int(v%4) + 1), Reason: fmt.Sprint(v)}))
	}
	if err := s.svc.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	snap, err := s.store.LatestSnapshot(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version != 20 || snap.AggregateType != order.AggregateType {
		t.Fatalf("latest snapshot at %d (%s), want 20", snap.Version, snap.AggregateType)
	}
	if _, err := s.store.LatestSnapshot(ctx, id, 19); err != nil {
		t.Fatalf("snapshot at 10: %v", err)
	}

	loaded, err := s.orders.Load(ctx, id) // snapshot at 20 + events 21..25
	if err != nil {
		t.Fatal(err)
	}
	replayed := order.New(id)
	if err := es.Replay(replayed, loadEvents(t, s.store, id)); err != nil {
		t.Fatal(err)
	}
	if replayed.Version() != 25 || !reflect.DeepEqual(loaded, replayed) {
		t.Fatalf("snapshot+tail %+v\nfull replay   %+v", loaded, replayed)
	}
	fromSnap, err := codec.OrderSnapshotCodec{}.Restore(snap)
	if err != nil || fromSnap.Version() != 20 {
		t.Fatalf("restore: %v %v", fromSnap, err)
	}
}
