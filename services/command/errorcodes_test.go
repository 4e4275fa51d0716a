package command_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/services/command/internal/app"
	"github.com/ordersys/ordersys/services/command/internal/grpcapi"
)

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
		ds := startServer(t, serverOptions{Session: dead})
		dead.Close() // the store is gone once the service runs
		_, err = ds.oc.ConfirmOrder(ctx, &ordersv1.ConfirmOrderRequest{OrderId: id})
		wantCode(t, err, codes.Unavailable)
		_, err = ds.oc.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: ids.New(), CustomerId: s.activeCustomer(t), Items: items(1), CommandId: ids.New()})
		wantCode(t, err, codes.Unavailable)
		if got := commandCount(t, ds, "ConfirmOrder", app.OutcomeUnavailable); got != 1 {
			t.Fatalf("unavailable commands counted %v", got)
		}

		// The service's health watch reports the dead store as NOT_SERVING.
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
