package command_test

import (
	"context"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
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
	out, err := st.LoadRange(ctxT(t), id, 1, math.MaxInt64)
	if err != nil {
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
