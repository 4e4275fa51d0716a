package codec

import (
	"errors"
	"fmt"

	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"google.golang.org/protobuf/proto"
)

// SnapshotSchemaVersion is the schema version of both snapshot encodings
// (orders.v1.OrderSnapshot and orders.v1.CustomerSnapshot).
const SnapshotSchemaVersion = 1

// SnapshotCodecs returns the snapshot codec of every aggregate kind, keyed by aggregate type.
func SnapshotCodecs() map[string]es.SnapshotCodec {
	return map[string]es.SnapshotCodec{
		order.AggregateType:    OrderSnapshotCodec{},
		customer.AggregateType: CustomerSnapshotCodec{},
	}
}

// OrderSnapshotCodec encodes *order.Order state as orders.v1.OrderSnapshot.
type OrderSnapshotCodec struct{}

var _ es.SnapshotCodec = OrderSnapshotCodec{}

// SchemaVersion returns SnapshotSchemaVersion.
func (OrderSnapshotCodec) SchemaVersion() int32 { return SnapshotSchemaVersion }

// Take encodes an *order.Order.
func (OrderSnapshotCodec) Take(a es.Aggregate) ([]byte, error) {
	o, ok := a.(*order.Order)
	if !ok {
		return nil, fmt.Errorf("order snapshot of a %T", a)
	}
	b, err := marshalOpts.Marshal(&ordersv1.OrderSnapshot{
		OrderId:           o.AggregateID(),
		CustomerId:        o.CustomerID,
		Status:            OrderStatusToProto(o.Status),
		Items:             ItemsToProto(o.Items),
		TotalCents:        o.TotalCents,
		TrackingNumber:    o.TrackingNumber,
		Carrier:           o.Carrier,
		CancelReason:      o.CancelReason,
		DeliverySignature: o.DeliverySignature,
		CreatedAt:         TimestampToProto(o.CreatedAt),
		UpdatedAt:         TimestampToProto(o.UpdatedAt),
	})
	if err != nil {
		return nil, fmt.Errorf("encode order %s snapshot: %w", o.AggregateID(), err)
	}
	return b, nil
}

// Restore rebuilds an *order.Order at s.Version.
func (OrderSnapshotCodec) Restore(s es.Snapshot) (es.Aggregate, error) {
	if err := checkSnapshot(s, order.AggregateType); err != nil {
		return nil, err
	}
	var m ordersv1.OrderSnapshot
	if err := proto.Unmarshal(s.State, &m); err != nil {
		return nil, fmt.Errorf("decode order %s snapshot: %w", s.AggregateID, err)
	}
	if m.GetOrderId() != s.AggregateID {
		return nil, fmt.Errorf("order snapshot of %s holds order %q", s.AggregateID, m.GetOrderId())
	}
	status, err := OrderStatusFromProto(m.GetStatus())
	if err == nil && status == order.StatusUnspecified {
		err = errors.New("status unspecified")
	}
	if err != nil {
		return nil, fmt.Errorf("order %s snapshot: %w", s.AggregateID, err)
	}
	o := order.New(s.AggregateID)
	o.CustomerID = m.GetCustomerId()
	o.Status = status
	o.Items = ItemsFromProto(m.GetItems())
	o.TotalCents = m.GetTotalCents()
	o.TrackingNumber = m.GetTrackingNumber()
	o.Carrier = m.GetCarrier()
	o.CancelReason = m.GetCancelReason()
	o.DeliverySignature = m.GetDeliverySignature()
	o.CreatedAt = TimestampFromProto(m.GetCreatedAt())
	o.UpdatedAt = TimestampFromProto(m.GetUpdatedAt())
	o.SetVersion(s.Version)
	return o, nil
}

// CustomerSnapshotCodec encodes *customer.Customer state as orders.v1.CustomerSnapshot.
type CustomerSnapshotCodec struct{}

var _ es.SnapshotCodec = CustomerSnapshotCodec{}

// SchemaVersion returns SnapshotSchemaVersion.
func (CustomerSnapshotCodec) SchemaVersion() int32 { return SnapshotSchemaVersion }

// Take encodes a *customer.Customer.
func (CustomerSnapshotCodec) Take(a es.Aggregate) ([]byte, error) {
	c, ok := a.(*customer.Customer)
	if !ok {
		return nil, fmt.Errorf("customer snapshot of a %T", a)
	}
	b, err := marshalOpts.Marshal(&ordersv1.CustomerSnapshot{
		CustomerId:     c.AggregateID(),
		Email:          c.Email.String(),
		FirstName:      c.FirstName,
		LastName:       c.LastName,
		Phone:          c.Phone.String(),
		Addresses:      addressesToProto(c.Addresses),
		PaymentMethods: paymentMethodsToProto(c.PaymentMethods),
		Tier:           TierToProto(c.Tier),
		Status:         CustomerStatusToProto(c.Status),
		CreatedAt:      TimestampToProto(c.CreatedAt),
		UpdatedAt:      TimestampToProto(c.UpdatedAt),
	})
	if err != nil {
		return nil, fmt.Errorf("encode customer %s snapshot: %w", c.AggregateID(), err)
	}
	return b, nil
}

// Restore rebuilds a *customer.Customer at s.Version.
func (CustomerSnapshotCodec) Restore(s es.Snapshot) (es.Aggregate, error) {
	if err := checkSnapshot(s, customer.AggregateType); err != nil {
		return nil, err
	}
	var m ordersv1.CustomerSnapshot
	if err := proto.Unmarshal(s.State, &m); err != nil {
		return nil, fmt.Errorf("decode customer %s snapshot: %w", s.AggregateID, err)
	}
	if m.GetCustomerId() != s.AggregateID {
		return nil, fmt.Errorf("customer snapshot of %s holds customer %q", s.AggregateID, m.GetCustomerId())
	}
	tier, err := TierFromProto(m.GetTier())
	if err != nil {
		return nil, fmt.Errorf("customer %s snapshot: %w", s.AggregateID, err)
	}
	status, err := CustomerStatusFromProto(m.GetStatus())
	if err == nil && status == customer.StatusUnspecified {
		err = errors.New("status unspecified")
	}
	if err != nil {
		return nil, fmt.Errorf("customer %s snapshot: %w", s.AggregateID, err)
	}
	c := customer.New(s.AggregateID)
	c.Email = customer.Email(m.GetEmail())
	c.FirstName = m.GetFirstName()
	c.LastName = m.GetLastName()
	c.Phone = customer.PhoneNumber(m.GetPhone())
	c.Addresses = addressesFromProto(m.GetAddresses())
	c.PaymentMethods = paymentMethodsFromProto(m.GetPaymentMethods())
	c.Tier = tier
	c.Status = status
	c.CreatedAt = TimestampFromProto(m.GetCreatedAt())
	c.UpdatedAt = TimestampFromProto(m.GetUpdatedAt())
	c.SetVersion(s.Version)
	return c, nil
}

// checkSnapshot refuses a snapshot of another aggregate kind, an unknown schema version (the
// caller then replays the whole stream) or a version below 1.
func checkSnapshot(s es.Snapshot, aggregateType string) error {
	if s.AggregateType != "" && s.AggregateType != aggregateType {
		return fmt.Errorf("%s snapshot codec given a %s snapshot", aggregateType, s.AggregateType)
	}
	if s.SchemaVersion != SnapshotSchemaVersion {
		return fmt.Errorf("%s %s snapshot: schema version %d unknown (want %d)", aggregateType, s.AggregateID, s.SchemaVersion, SnapshotSchemaVersion)
	}
	if s.Version < 1 {
		return fmt.Errorf("%s %s snapshot at version %d: want at least 1", aggregateType, s.AggregateID, s.Version)
	}
	return nil
}
