package codec

import (
	"fmt"
	"time"

	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/order"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The domain enums use the protobuf numbers, so mapping is a conversion plus a range check.

// OrderStatusToProto maps a domain order status to orders.v1.OrderStatus.
func OrderStatusToProto(s order.Status) ordersv1.OrderStatus { return ordersv1.OrderStatus(s) }

// OrderStatusFromProto maps orders.v1.OrderStatus to the domain status; UNSPECIFIED maps to
// order.StatusUnspecified and a number the domain does not know is an error.
func OrderStatusFromProto(s ordersv1.OrderStatus) (order.Status, error) {
	if s < ordersv1.OrderStatus_ORDER_STATUS_UNSPECIFIED || s > ordersv1.OrderStatus_ORDER_STATUS_CANCELLED {
		return order.StatusUnspecified, fmt.Errorf("unknown order status %d", int32(s))
	}
	return order.Status(s), nil
}

// TierToProto maps a domain tier to orders.v1.CustomerTier.
func TierToProto(t customer.Tier) ordersv1.CustomerTier { return ordersv1.CustomerTier(t) }

// TierFromProto maps orders.v1.CustomerTier to the domain tier; UNSPECIFIED maps to
// customer.TierUnspecified and an unknown number is an error.
func TierFromProto(t ordersv1.CustomerTier) (customer.Tier, error) {
	if t < ordersv1.CustomerTier_CUSTOMER_TIER_UNSPECIFIED || t > ordersv1.CustomerTier_CUSTOMER_TIER_PLATINUM {
		return customer.TierUnspecified, fmt.Errorf("unknown customer tier %d", int32(t))
	}
	return customer.Tier(t), nil
}

// CustomerStatusToProto maps a domain customer status to orders.v1.CustomerStatus.
func CustomerStatusToProto(s customer.Status) ordersv1.CustomerStatus {
	return ordersv1.CustomerStatus(s)
}

// CustomerStatusFromProto maps orders.v1.CustomerStatus to the domain status; UNSPECIFIED maps
// to customer.StatusUnspecified and an unknown number is an error.
func CustomerStatusFromProto(s ordersv1.CustomerStatus) (customer.Status, error) {
	if s < ordersv1.CustomerStatus_CUSTOMER_STATUS_UNSPECIFIED || s > ordersv1.CustomerStatus_CUSTOMER_STATUS_ERASED {
		return customer.StatusUnspecified, fmt.Errorf("unknown customer status %d", int32(s))
	}
	return customer.Status(s), nil
}

// PaymentMethodKindToProto maps a domain payment method kind to orders.v1.PaymentMethodKind.
func PaymentMethodKindToProto(k customer.PaymentMethodKind) ordersv1.PaymentMethodKind {
	return ordersv1.PaymentMethodKind(k)
}

// PaymentMethodKindFromProto maps orders.v1.PaymentMethodKind to the domain kind. An unknown
// number is kept as is (the domain's Validate rejects it with a field path), so commands report
// it as a bad field rather than a transport error.
func PaymentMethodKindFromProto(k ordersv1.PaymentMethodKind) customer.PaymentMethodKind {
	return customer.PaymentMethodKind(k)
}

// ItemsToProto maps order lines to orders.v1.OrderItem messages.
func ItemsToProto(items []order.Item) []*ordersv1.OrderItem {
	if len(items) == 0 {
		return nil
	}
	out := make([]*ordersv1.OrderItem, len(items))
	for i, it := range items {
		out[i] = &ordersv1.OrderItem{ProductId: it.ProductID, Quantity: it.Quantity, UnitPriceCents: it.UnitPriceCents}
	}
	return out
}

// ItemsFromProto maps orders.v1.OrderItem messages to order lines (nil for none; a nil message
// becomes a zero line, which the domain's validation rejects).
func ItemsFromProto(items []*ordersv1.OrderItem) []order.Item {
	if len(items) == 0 {
		return nil
	}
	out := make([]order.Item, len(items))
	for i, it := range items {
		out[i] = order.Item{ProductID: it.GetProductId(), Quantity: it.GetQuantity(), UnitPriceCents: it.GetUnitPriceCents()}
	}
	return out
}

// AddressToProto maps a domain address to orders.v1.Address.
func AddressToProto(a customer.Address) *ordersv1.Address {
	return &ordersv1.Address{
		AddressId: a.AddressID, Label: a.Label, Line1: a.Line1, Line2: a.Line2, City: a.City,
		Region: a.Region, PostalCode: a.PostalCode, CountryCode: a.CountryCode, IsDefault: a.IsDefault,
	}
}

// AddressFromProto maps orders.v1.Address to a domain address (the zero address for nil).
func AddressFromProto(a *ordersv1.Address) customer.Address {
	return customer.Address{
		AddressID: a.GetAddressId(), Label: a.GetLabel(), Line1: a.GetLine1(), Line2: a.GetLine2(),
		City: a.GetCity(), Region: a.GetRegion(), PostalCode: a.GetPostalCode(),
		CountryCode: a.GetCountryCode(), IsDefault: a.GetIsDefault(),
	}
}

// PaymentMethodToProto maps a domain payment method to orders.v1.PaymentMethod.
func PaymentMethodToProto(p customer.PaymentMethod) *ordersv1.PaymentMethod {
	return &ordersv1.PaymentMethod{
		PaymentMethodId: p.PaymentMethodID, Kind: PaymentMethodKindToProto(p.Kind), Brand: p.Brand,
		Last4: p.Last4, ExpMonth: p.ExpMonth, ExpYear: p.ExpYear, IsDefault: p.IsDefault,
	}
}

// PaymentMethodFromProto maps orders.v1.PaymentMethod to a domain payment method (the zero value
// for nil).
func PaymentMethodFromProto(p *ordersv1.PaymentMethod) customer.PaymentMethod {
	return customer.PaymentMethod{
		PaymentMethodID: p.GetPaymentMethodId(), Kind: PaymentMethodKindFromProto(p.GetKind()),
		Brand: p.GetBrand(), Last4: p.GetLast4(), ExpMonth: p.GetExpMonth(), ExpYear: p.GetExpYear(),
		IsDefault: p.GetIsDefault(),
	}
}

func addressesToProto(as []customer.Address) []*ordersv1.Address {
	if len(as) == 0 {
		return nil
	}
	out := make([]*ordersv1.Address, len(as))
	for i, a := range as {
		out[i] = AddressToProto(a)
	}
	return out
}

func addressesFromProto(as []*ordersv1.Address) []customer.Address {
	if len(as) == 0 {
		return nil
	}
	out := make([]customer.Address, len(as))
	for i, a := range as {
		out[i] = AddressFromProto(a)
	}
	return out
}

func paymentMethodsToProto(ps []customer.PaymentMethod) []*ordersv1.PaymentMethod {
	if len(ps) == 0 {
		return nil
	}
	out := make([]*ordersv1.PaymentMethod, len(ps))
	for i, p := range ps {
		out[i] = PaymentMethodToProto(p)
	}
	return out
}

func paymentMethodsFromProto(ps []*ordersv1.PaymentMethod) []customer.PaymentMethod {
	if len(ps) == 0 {
		return nil
	}
	out := make([]customer.PaymentMethod, len(ps))
	for i, p := range ps {
		out[i] = PaymentMethodFromProto(p)
	}
	return out
}

// OrderToProto renders an Order aggregate's state as the orders.v1.Order read model, e.g. for
// GetOrderAt. The customer_email and customer_name fields belong to projections and stay empty.
func OrderToProto(o *order.Order) *ordersv1.Order {
	return &ordersv1.Order{
		OrderId:           o.AggregateID(),
		CustomerId:        o.CustomerID,
		Status:            OrderStatusToProto(o.Status),
		Items:             ItemsToProto(o.Items),
		TotalCents:        o.TotalCents,
		Version:           o.Version(),
		TrackingNumber:    o.TrackingNumber,
		Carrier:           o.Carrier,
		CreatedAt:         TimestampToProto(o.CreatedAt),
		UpdatedAt:         TimestampToProto(o.UpdatedAt),
		CancelReason:      o.CancelReason,
		DeliverySignature: o.DeliverySignature,
	}
}

// CustomerToProto renders a Customer aggregate's state as the orders.v1.Customer read model.
func CustomerToProto(c *customer.Customer) *ordersv1.Customer {
	return &ordersv1.Customer{
		CustomerId:     c.AggregateID(),
		Email:          c.Email.String(),
		FirstName:      c.FirstName,
		LastName:       c.LastName,
		Phone:          c.Phone.String(),
		Addresses:      addressesToProto(c.Addresses),
		PaymentMethods: paymentMethodsToProto(c.PaymentMethods),
		Tier:           TierToProto(c.Tier),
		Status:         CustomerStatusToProto(c.Status),
		Version:        c.Version(),
		CreatedAt:      TimestampToProto(c.CreatedAt),
		UpdatedAt:      TimestampToProto(c.UpdatedAt),
	}
}

// TimestampToProto converts a time to a protobuf Timestamp; the zero time becomes nil (unset).
func TimestampToProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// TimestampFromProto converts a protobuf Timestamp to a UTC time; nil becomes the zero time.
func TimestampFromProto(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime().UTC()
}
