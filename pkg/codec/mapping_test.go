package codec_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/order"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestEnumMappings(t *testing.T) {
	for s := order.StatusUnspecified; s <= order.StatusCancelled; s++ {
		p := codec.OrderStatusToProto(s)
		if want := "ORDER_STATUS_" + s.String(); p.String() != want {
			t.Errorf("%s → %s, want %s", s, p, want)
		}
		if back, err := codec.OrderStatusFromProto(p); err != nil || back != s {
			t.Errorf("%s back: %v %v", p, back, err)
		}
	}
	if _, err := codec.OrderStatusFromProto(99); err == nil {
		t.Error("unknown order status mapped")
	}
	for tr := customer.TierUnspecified; tr <= customer.TierPlatinum; tr++ {
		p := codec.TierToProto(tr)
		if want := "CUSTOMER_TIER_" + tr.String(); p.String() != want {
			t.Errorf("%s → %s", tr, p)
		}
		if back, err := codec.TierFromProto(p); err != nil || back != tr {
			t.Errorf("%s back: %v %v", p, back, err)
		}
	}
	if _, err := codec.TierFromProto(-1); err == nil {
		t.Error("unknown tier mapped")
	}
	for s := customer.StatusUnspecified; s <= customer.StatusErased; s++ {
		p := codec.CustomerStatusToProto(s)
		if want := "CUSTOMER_STATUS_" + s.String(); p.String() != want {
			t.Errorf("%s → %s", s, p)
		}
		if back, err := codec.CustomerStatusFromProto(p); err != nil || back != s {
			t.Errorf("%s back: %v %v", p, back, err)
		}
	}
	if _, err := codec.CustomerStatusFromProto(5); err == nil {
		t.Error("unknown customer status mapped")
	}
	for k := customer.KindUnspecified; k <= customer.KindWallet; k++ {
		p := codec.PaymentMethodKindToProto(k)
		if want := "PAYMENT_METHOD_KIND_" + k.String(); p.String() != want {
			t.Errorf("%s → %s", k, p)
		}
		if codec.PaymentMethodKindFromProto(p) != k {
			t.Errorf("%s back", p)
		}
	}
}

func TestValueMappings(t *testing.T) {
	if got := codec.AddressFromProto(codec.AddressToProto(addrFull)); got != addrFull {
		t.Errorf("address %+v", got)
	}
	if got := codec.PaymentMethodFromProto(codec.PaymentMethodToProto(cardFull)); got != cardFull {
		t.Errorf("payment method %+v", got)
	}
	if got := codec.ItemsFromProto(codec.ItemsToProto(items())); !reflect.DeepEqual(got, items()) {
		t.Errorf("items %+v", got)
	}
	if codec.ItemsToProto(nil) != nil || codec.ItemsFromProto(nil) != nil {
		t.Error("empty items not nil")
	}
	if (codec.AddressFromProto(nil) != customer.Address{}) || (codec.PaymentMethodFromProto(nil) != customer.PaymentMethod{}) {
		t.Error("nil messages")
	}
	if !codec.TimestampFromProto(nil).IsZero() || codec.TimestampToProto(time.Time{}) != nil {
		t.Error("zero time mapping")
	}
	if got := codec.TimestampFromProto(timestamppb.New(t0)); got.Location() != time.UTC || !got.Equal(t0) {
		t.Errorf("timestamp %v", got)
	}
}

func TestReadModelMappings(t *testing.T) {
	o := order.New(orderID)
	drive[*order.Order, order.Command](t, o,
		order.Create{Customer: order.CustomerActive, OrderID: orderID, CustomerID: customerID, Items: items()},
		order.Confirm{}, order.Ship{TrackingNumber: "1Z", Carrier: "UPS"}, order.Deliver{Signature: "sig"})
	p := codec.OrderToProto(o)
	if p.GetOrderId() != orderID || p.GetCustomerId() != customerID || p.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_DELIVERED ||
		p.GetVersion() != 4 || p.GetTotalCents() != 2797 || len(p.GetItems()) != 2 || p.GetTrackingNumber() != "1Z" ||
		p.GetCarrier() != "UPS" || p.GetDeliverySignature() != "sig" || !p.GetCreatedAt().AsTime().Equal(o.CreatedAt) ||
		!p.GetUpdatedAt().AsTime().Equal(o.UpdatedAt) {
		t.Fatalf("order %v", p)
	}
	c := customer.New(customerID)
	drive[*customer.Customer, customer.Command](t, c,
		customer.Register{CustomerID: customerID, Email: "jane@example.com", FirstName: "Jane", LastName: "Doe", Phone: "+4915112345678"},
		customer.AddAddress{Address: addrFull}, customer.AddPaymentMethod{PaymentMethod: cardFull}, customer.UpgradeTier{Tier: customer.TierSilver})
	cp := codec.CustomerToProto(c)
	if cp.GetCustomerId() != customerID || cp.GetEmail() != "jane@example.com" || cp.GetPhone() != "+4915112345678" ||
		cp.GetTier() != ordersv1.CustomerTier_CUSTOMER_TIER_SILVER || cp.GetStatus() != ordersv1.CustomerStatus_CUSTOMER_STATUS_ACTIVE ||
		cp.GetVersion() != 4 || len(cp.GetAddresses()) != 1 || len(cp.GetPaymentMethods()) != 1 || cp.GetFirstName() != "Jane" ||
		cp.GetLastName() != "Doe" || cp.GetCreatedAt() == nil || cp.GetUpdatedAt() == nil {
		t.Fatalf("customer %v", cp)
	}
}
