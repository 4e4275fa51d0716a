package codec

import (
	"fmt"
	"sync"

	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"google.golang.org/protobuf/proto"
)

// marshalOpts makes payloads byte-for-byte reproducible for equal events.
var marshalOpts = proto.MarshalOptions{Deterministic: true}

// NewRegistry returns a registry that knows every Order and Customer event type: its protobuf
// binary encoding (the domain struct ⇄ the orders.v1 message of the same name), its current
// schema version (OrderCreated 2, everything else 1) and the OrderCreated v1→v2 upcaster.
func NewRegistry() *es.Registry {
	r := es.NewRegistry()
	for eventType, k := range kinds {
		r.Register(eventType, es.EventCodec{
			AggregateType: k.aggregateType,
			SchemaVersion: k.version,
			Encode: func(e es.Event) ([]byte, error) {
				m, err := k.toProto(e)
				if err != nil {
					return nil, err
				}
				return marshalOpts.Marshal(m)
			},
			Decode: func(b []byte) (es.Event, error) {
				m := k.newMsg()
				if err := proto.Unmarshal(b, m); err != nil {
					return nil, err
				}
				return k.fromProto(m), nil
			},
		})
	}
	r.RegisterUpcaster(order.EventOrderCreated, 1, UpcastOrderCreatedV1)
	return r
}

// defaultRegistry serves the functions that need a registry but take none (RenderJSON).
var defaultRegistry = sync.OnceValue(NewRegistry)

// UpcastOrderCreatedV1 turns an OrderCreated payload of schema version 1 (orders.v1.OrderCreatedV1,
// without total_cents) into version 2 by computing total_cents from the items.
func UpcastOrderCreatedV1(payload []byte) ([]byte, error) {
	var v1 ordersv1.OrderCreatedV1
	if err := proto.Unmarshal(payload, &v1); err != nil {
		return nil, fmt.Errorf("decode OrderCreated v1: %w", err)
	}
	total, err := order.Total(ItemsFromProto(v1.GetItems()))
	if err != nil {
		return nil, fmt.Errorf("compute total_cents of order %s: %w", v1.GetOrderId(), err)
	}
	return marshalOpts.Marshal(&ordersv1.OrderCreated{
		OrderId:    v1.GetOrderId(),
		CustomerId: v1.GetCustomerId(),
		Items:      v1.GetItems(),
		TotalCents: total,
	})
}
