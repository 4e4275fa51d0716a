package codec

import (
	"fmt"

	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"google.golang.org/protobuf/proto"
)

// OrderCreatedSchemaVersion is the current schema version of OrderCreated: version 1 had no
// total_cents; its payloads are upcast on load.
const OrderCreatedSchemaVersion = 2

// eventKind ties one domain event type to its protobuf message at the current schema version.
type eventKind struct {
	aggregateType string
	version       int32
	newMsg        func() proto.Message
	toProto       func(es.Event) (proto.Message, error)
	fromProto     func(proto.Message) es.Event
}

// kind builds an eventKind from typed conversions.
func kind[E es.Event, M proto.Message](aggregateType string, version int32, newMsg func() M, to func(E) M, from func(M) E) eventKind {
	return eventKind{
		aggregateType: aggregateType,
		version:       version,
		newMsg:        func() proto.Message { return newMsg() },
		toProto: func(e es.Event) (proto.Message, error) {
			ev, ok := e.(E)
			if !ok {
				var want E
				return nil, fmt.Errorf("event %s is a %T, want %T", e.EventType(), e, want)
			}
			return to(ev), nil
		},
		fromProto: func(m proto.Message) es.Event { return from(m.(M)) },
	}
}

// kinds lists every event type of the domain with its message and schema version.
var kinds = map[string]eventKind{
	// Order
	order.EventOrderCreated: kind(order.AggregateType, OrderCreatedSchemaVersion,
		func() *ordersv1.OrderCreated { return new(ordersv1.OrderCreated) },
		func(e order.OrderCreated) *ordersv1.OrderCreated {
			return &ordersv1.OrderCreated{OrderId: e.OrderID, CustomerId: e.CustomerID, Items: ItemsToProto(e.Items), TotalCents: e.TotalCents}
		},
		func(m *ordersv1.OrderCreated) order.OrderCreated {
			return order.OrderCreated{OrderID: m.GetOrderId(), CustomerID: m.GetCustomerId(), Items: ItemsFromProto(m.GetItems()), TotalCents: m.GetTotalCents()}
		}),
	order.EventOrderItemsUpdated: kind(order.AggregateType, 1,
		func() *ordersv1.OrderItemsUpdated { return new(ordersv1.OrderItemsUpdated) },
		func(e order.OrderItemsUpdated) *ordersv1.OrderItemsUpdated {
			return &ordersv1.OrderItemsUpdated{Items: ItemsToProto(e.Items), TotalCents: e.TotalCents, Reason: e.Reason}
		},
		func(m *ordersv1.OrderItemsUpdated) order.OrderItemsUpdated {
			return order.OrderItemsUpdated{Items: ItemsFromProto(m.GetItems()), TotalCents: m.GetTotalCents(), Reason: m.GetReason()}
		}),
	order.EventOrderConfirmed: kind(order.AggregateType, 1,
		func() *ordersv1.OrderConfirmed { return new(ordersv1.OrderConfirmed) },
		func(order.OrderConfirmed) *ordersv1.OrderConfirmed { return &ordersv1.OrderConfirmed{} },
		func(*ordersv1.OrderConfirmed) order.OrderConfirmed { return order.OrderConfirmed{} }),
	order.EventOrderShipped: kind(order.AggregateType, 1,
		func() *ordersv1.OrderShipped { return new(ordersv1.OrderShipped) },
		func(e order.OrderShipped) *ordersv1.OrderShipped {
			return &ordersv1.OrderShipped{TrackingNumber: e.TrackingNumber, Carrier: e.Carrier}
		},
		func(m *ordersv1.OrderShipped) order.OrderShipped {
			return order.OrderShipped{TrackingNumber: m.GetTrackingNumber(), Carrier: m.GetCarrier()}
		}),
	order.EventOrderDelivered: kind(order.AggregateType, 1,
		func() *ordersv1.OrderDelivered { return new(ordersv1.OrderDelivered) },
		func(e order.OrderDelivered) *ordersv1.OrderDelivered {
			return &ordersv1.OrderDelivered{Signature: e.Signature}
		},
		func(m *ordersv1.OrderDelivered) order.OrderDelivered {
			return order.OrderDelivered{Signature: m.GetSignature()}
		}),
	order.EventOrderCancelled: kind(order.AggregateType, 1,
		func() *ordersv1.OrderCancelled { return new(ordersv1.OrderCancelled) },
		func(e order.OrderCancelled) *ordersv1.OrderCancelled {
			return &ordersv1.OrderCancelled{Reason: e.Reason, CancelledBy: e.CancelledBy}
		},
		func(m *ordersv1.OrderCancelled) order.OrderCancelled {
			return order.OrderCancelled{Reason: m.GetReason(), CancelledBy: m.GetCancelledBy()}
		}),

	// Customer
	customer.EventCustomerRegistered: kind(customer.AggregateType, 1,
		func() *ordersv1.CustomerRegistered { return new(ordersv1.CustomerRegistered) },
		func(e customer.CustomerRegistered) *ordersv1.CustomerRegistered {
			return &ordersv1.CustomerRegistered{
				CustomerId: e.CustomerID, Email: e.Email.String(), FirstName: e.FirstName,
				LastName: e.LastName, Phone: e.Phone.String(), Tier: TierToProto(e.Tier),
			}
		},
		func(m *ordersv1.CustomerRegistered) customer.CustomerRegistered {
			return customer.CustomerRegistered{
				CustomerID: m.GetCustomerId(), Email: customer.Email(m.GetEmail()), FirstName: m.GetFirstName(),
				LastName: m.GetLastName(), Phone: customer.PhoneNumber(m.GetPhone()), Tier: customer.Tier(m.GetTier()),
			}
		}),
	customer.EventCustomerProfileUpdated: kind(customer.AggregateType, 1,
		func() *ordersv1.CustomerProfileUpdated { return new(ordersv1.CustomerProfileUpdated) },
		func(e customer.CustomerProfileUpdated) *ordersv1.CustomerProfileUpdated {
			return &ordersv1.CustomerProfileUpdated{FirstName: e.FirstName, LastName: e.LastName}
		},
		func(m *ordersv1.CustomerProfileUpdated) customer.CustomerProfileUpdated {
			return customer.CustomerProfileUpdated{FirstName: m.GetFirstName(), LastName: m.GetLastName()}
		}),
	customer.EventCustomerEmailChanged: kind(customer.AggregateType, 1,
		func() *ordersv1.CustomerEmailChanged { return new(ordersv1.CustomerEmailChanged) },
		func(e customer.CustomerEmailChanged) *ordersv1.CustomerEmailChanged {
			return &ordersv1.CustomerEmailChanged{OldEmail: e.OldEmail.String(), NewEmail: e.NewEmail.String()}
		},
		func(m *ordersv1.CustomerEmailChanged) customer.CustomerEmailChanged {
			return customer.CustomerEmailChanged{OldEmail: customer.Email(m.GetOldEmail()), NewEmail: customer.Email(m.GetNewEmail())}
		}),
	customer.EventCustomerPhoneChanged: kind(customer.AggregateType, 1,
		func() *ordersv1.CustomerPhoneChanged { return new(ordersv1.CustomerPhoneChanged) },
		func(e customer.CustomerPhoneChanged) *ordersv1.CustomerPhoneChanged {
			return &ordersv1.CustomerPhoneChanged{OldPhone: e.OldPhone.String(), NewPhone: e.NewPhone.String()}
		},
		func(m *ordersv1.CustomerPhoneChanged) customer.CustomerPhoneChanged {
			return customer.CustomerPhoneChanged{OldPhone: customer.PhoneNumber(m.GetOldPhone()), NewPhone: customer.PhoneNumber(m.GetNewPhone())}
		}),
	customer.EventCustomerAddressAdded: kind(customer.AggregateType, 1,
		func() *ordersv1.CustomerAddressAdded { return new(ordersv1.CustomerAddressAdded) },
		func(e customer.CustomerAddressAdded) *ordersv1.CustomerAddressAdded {
			return &ordersv1.CustomerAddressAdded{Address: AddressToProto(e.Address)}
		},
		func(m *ordersv1.CustomerAddressAdded) customer.CustomerAddressAdded {
			return customer.CustomerAddressAdded{Address: AddressFromProto(m.GetAddress())}
		}),
	customer.EventCustomerAddressUpdated: kind(customer.AggregateType, 1,
		func() *ordersv1.CustomerAddressUpdated { return new(ordersv1.CustomerAddressUpdated) },
		func(e customer.CustomerAddressUpdated) *ordersv1.CustomerAddressUpdated {
			return &ordersv1.CustomerAddressUpdated{Address: AddressToProto(e.Address)}
		},
		func(m *ordersv1.CustomerAddressUpdated) customer.CustomerAddressUpdated {
			return customer.CustomerAddressUpdated{Address: AddressFromProto(m.GetAddress())}
		}),
	customer.EventCustomerAddressRemoved: kind(customer.AggregateType, 1,
		func() *ordersv1.CustomerAddressRemoved { return new(ordersv1.CustomerAddressRemoved) },
		func(e customer.CustomerAddressRemoved) *ordersv1.CustomerAddressRemoved {
			return &ordersv1.CustomerAddressRemoved{AddressId: e.AddressID}
		},
		func(m *ordersv1.CustomerAddressRemoved) customer.CustomerAddressRemoved {
			return customer.CustomerAddressRemoved{AddressID: m.GetAddressId()}
		}),
	customer.EventCustomerPaymentMethodAdded: kind(customer.AggregateType, 1,
		func() *ordersv1.CustomerPaymentMethodAdded { return new(ordersv1.CustomerPaymentMethodAdded) },
		func(e customer.CustomerPaymentMethodAdded) *ordersv1.CustomerPaymentMethodAdded {
			return &ordersv1.CustomerPaymentMethodAdded{PaymentMethod: PaymentMethodToProto(e.PaymentMethod)}
		},
		func(m *ordersv1.CustomerPaymentMethodAdded) customer.CustomerPaymentMethodAdded {
			return customer.CustomerPaymentMethodAdded{PaymentMethod: PaymentMethodFromProto(m.GetPaymentMethod())}
		}),
	customer.EventCustomerPaymentMethodRemoved: kind(customer.AggregateType, 1,
		func() *ordersv1.CustomerPaymentMethodRemoved { return new(ordersv1.CustomerPaymentMethodRemoved) },
		func(e customer.CustomerPaymentMethodRemoved) *ordersv1.CustomerPaymentMethodRemoved {
			return &ordersv1.CustomerPaymentMethodRemoved{PaymentMethodId: e.PaymentMethodID}
		},
		func(m *ordersv1.CustomerPaymentMethodRemoved) customer.CustomerPaymentMethodRemoved {
			return customer.CustomerPaymentMethodRemoved{PaymentMethodID: m.GetPaymentMethodId()}
		}),
	customer.EventCustomerTierUpgraded: kind(customer.AggregateType, 1,
		func() *ordersv1.CustomerTierUpgraded { return new(ordersv1.CustomerTierUpgraded) },
		func(e customer.CustomerTierUpgraded) *ordersv1.CustomerTierUpgraded {
			return &ordersv1.CustomerTierUpgraded{OldTier: TierToProto(e.OldTier), NewTier: TierToProto(e.NewTier)}
		},
		func(m *ordersv1.CustomerTierUpgraded) customer.CustomerTierUpgraded {
			return customer.CustomerTierUpgraded{OldTier: customer.Tier(m.GetOldTier()), NewTier: customer.Tier(m.GetNewTier())}
		}),
	customer.EventCustomerSuspended: kind(customer.AggregateType, 1,
		func() *ordersv1.CustomerSuspended { return new(ordersv1.CustomerSuspended) },
		func(e customer.CustomerSuspended) *ordersv1.CustomerSuspended {
			return &ordersv1.CustomerSuspended{Reason: e.Reason}
		},
		func(m *ordersv1.CustomerSuspended) customer.CustomerSuspended {
			return customer.CustomerSuspended{Reason: m.GetReason()}
		}),
	customer.EventCustomerReactivated: kind(customer.AggregateType, 1,
		func() *ordersv1.CustomerReactivated { return new(ordersv1.CustomerReactivated) },
		func(customer.CustomerReactivated) *ordersv1.CustomerReactivated {
			return &ordersv1.CustomerReactivated{}
		},
		func(*ordersv1.CustomerReactivated) customer.CustomerReactivated {
			return customer.CustomerReactivated{}
		}),
	customer.EventCustomerDeactivated: kind(customer.AggregateType, 1,
		func() *ordersv1.CustomerDeactivated { return new(ordersv1.CustomerDeactivated) },
		func(e customer.CustomerDeactivated) *ordersv1.CustomerDeactivated {
			return &ordersv1.CustomerDeactivated{Reason: e.Reason}
		},
		func(m *ordersv1.CustomerDeactivated) customer.CustomerDeactivated {
			return customer.CustomerDeactivated{Reason: m.GetReason()}
		}),
	customer.EventCustomerErased: kind(customer.AggregateType, 1,
		func() *ordersv1.CustomerErased { return new(ordersv1.CustomerErased) },
		func(customer.CustomerErased) *ordersv1.CustomerErased { return &ordersv1.CustomerErased{} },
		func(*ordersv1.CustomerErased) customer.CustomerErased { return customer.CustomerErased{} }),
}
