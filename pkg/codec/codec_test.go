package codec_test

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"google.golang.org/protobuf/proto"
)

const (
	orderID    = "0b6f4a3e-9c1d-4f2a-8e5b-1d2c3b4a5f60"
	customerID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	productA   = "a1a1a1a1-0000-4000-8000-000000000001"
	productB   = "b2b2b2b2-0000-4000-8000-000000000002"
	addr1      = "a0000000-0000-4000-8000-000000000001"
	addr2      = "a0000000-0000-4000-8000-000000000002"
	pm1        = "b0000000-0000-4000-8000-000000000001"
	pm2        = "b0000000-0000-4000-8000-000000000002"
)

var t0 = time.Date(2025, 3, 1, 12, 30, 0, 123456789, time.FixedZone("CET", 3600))

func items() []order.Item {
	return []order.Item{
		{ProductID: productA, Quantity: 2, UnitPriceCents: 1250},
		{ProductID: productB, Quantity: 3, UnitPriceCents: 99},
	}
}

var addrFull = customer.Address{
	AddressID: addr1, Label: "home", Line1: "Unter den Linden 1", Line2: "3. OG", City: "Berlin",
	Region: "BE", PostalCode: "10117", CountryCode: "DE", IsDefault: true,
}

var cardFull = customer.PaymentMethod{
	PaymentMethodID: pm1, Kind: customer.KindCard, Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: 2030, IsDefault: true,
}

// sampleEvents holds one event of every type with every field set.
func sampleEvents() []es.Event {
	return []es.Event{
		order.OrderCreated{OrderID: orderID, CustomerID: customerID, Items: items(), TotalCents: 2797},
		order.OrderItemsUpdated{Items: items()[:1], TotalCents: 2500, Reason: "out of stock"},
		order.OrderConfirmed{},
		order.OrderShipped{TrackingNumber: "1Z999AA1", Carrier: "UPS"},
		order.OrderDelivered{Signature: "J. Doe"},
		order.OrderCancelled{Reason: "lost", CancelledBy: "support"},
		customer.CustomerRegistered{CustomerID: customerID, Email: "jane@example.com", FirstName: "Jane", LastName: "Doe", Phone: "+4915112345678", Tier: customer.TierBronze},
		customer.CustomerProfileUpdated{FirstName: "Janet", LastName: "Smith"},
		customer.CustomerEmailChanged{OldEmail: "jane@example.com", NewEmail: "janet@example.org"},
		customer.CustomerPhoneChanged{OldPhone: "+4915112345678", NewPhone: "+14155552671"},
		customer.CustomerAddressAdded{Address: addrFull},
		customer.CustomerAddressUpdated{Address: addrFull},
		customer.CustomerAddressRemoved{AddressID: addr1},
		customer.CustomerPaymentMethodAdded{PaymentMethod: cardFull},
		customer.CustomerPaymentMethodRemoved{PaymentMethodID: pm1},
		customer.CustomerTierUpgraded{OldTier: customer.TierSilver, NewTier: customer.TierPlatinum},
		customer.CustomerSuspended{Reason: "chargeback"},
		customer.CustomerReactivated{},
		customer.CustomerDeactivated{Reason: "closed"},
		customer.CustomerErased{},
	}
}

func TestEveryEventTypeRoundTrips(t *testing.T) {
	reg := codec.NewRegistry()
	var seen []string
	for _, ev := range sampleEvents() {
		typ := ev.EventType()
		seen = append(seen, typ)
		t.Run(typ, func(t *testing.T) {
			b, v, err := reg.Encode(ev)
			if err != nil {
				t.Fatal(err)
			}
			wantV := int32(1)
			if typ == order.EventOrderCreated {
				wantV = 2
			}
			if v != wantV {
				t.Fatalf("schema version %d, want %d", v, wantV)
			}
			got, err := reg.Decode(typ, v, b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, ev) {
				t.Fatalf("round trip\n got %#v\nwant %#v", got, ev)
			}
			agg, err := reg.AggregateTypeOf(typ)
			wantAgg := customer.AggregateType
			if strings.HasPrefix(typ, "Order") {
				wantAgg = order.AggregateType
			}
			if err != nil || agg != wantAgg {
				t.Fatalf("aggregate type %q %v", agg, err)
			}
		})
	}
	sort.Strings(seen)
	if types := reg.EventTypes(); !reflect.DeepEqual(types, seen) {
		t.Fatalf("registry types %v\nsample types %v", types, seen)
	}
}

// TestEncodingIsTheProtoMessage checks that a payload is the orders.v1 message of the same name
// (readable by any protobuf client), not some private encoding.
func TestEncodingIsTheProtoMessage(t *testing.T) {
	reg := codec.NewRegistry()
	b, _, err := reg.Encode(customer.CustomerAddressAdded{Address: addrFull})
	if err != nil {
		t.Fatal(err)
	}
	var m ordersv1.CustomerAddressAdded
	if err := proto.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.GetAddress().GetCity() != "Berlin" || !m.GetAddress().GetIsDefault() || m.GetAddress().GetCountryCode() != "DE" {
		t.Fatalf("message %v", &m)
	}
	b, _, err = reg.Encode(customer.CustomerTierUpgraded{OldTier: customer.TierBronze, NewTier: customer.TierGold})
	if err != nil {
		t.Fatal(err)
	}
	var tu ordersv1.CustomerTierUpgraded
	if err := proto.Unmarshal(b, &tu); err != nil || tu.GetNewTier() != ordersv1.CustomerTier_CUSTOMER_TIER_GOLD {
		t.Fatalf("tier message %v %v", &tu, err)
	}
}

func TestOrderCreatedV1LoadsAsV2(t *testing.T) {
	reg := codec.NewRegistry()
	v1, err := proto.Marshal(&ordersv1.OrderCreatedV1{
		OrderId: orderID, CustomerId: customerID, Items: codec.ItemsToProto(items()),
	})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := reg.Decode(order.EventOrderCreated, 1, v1)
	if err != nil {
		t.Fatal(err)
	}
	want := order.OrderCreated{OrderID: orderID, CustomerID: customerID, Items: items(), TotalCents: 2*1250 + 3*99}
	if !reflect.DeepEqual(ev, want) {
		t.Fatalf("upcast\n got %#v\nwant %#v", ev, want)
	}
	// through an envelope: the stored schema version stays visible, the event is current
	env := es.Envelope{EventID: ids.New(), AggregateID: orderID, AggregateType: order.AggregateType, Sequence: 1,
		EventType: order.EventOrderCreated, SchemaVersion: 1, Payload: v1, OccurredAt: t0.UTC()}
	if err := reg.DecodeEnvelope(&env); err != nil {
		t.Fatal(err)
	}
	if env.SchemaVersion != 1 || !reflect.DeepEqual(env.Event, want) {
		t.Fatalf("envelope %v %#v", env, env.Event)
	}
	o := order.New(orderID)
	if err := es.Replay(o, []es.Envelope{env}); err != nil || o.TotalCents != 2797 {
		t.Fatalf("replay of a v1 event: total %d, %v", o.TotalCents, err)
	}
	// the JSON rendering shows the upcast payload
	env.Event = nil
	js, err := codec.RenderJSON(env)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(js), &doc); err != nil || doc["total_cents"] != "2797" {
		t.Fatalf("json %s (%v)", js, err)
	}
	// a v1 payload whose total overflows cannot be upcast
	big, _ := proto.Marshal(&ordersv1.OrderCreatedV1{OrderId: orderID, Items: []*ordersv1.OrderItem{
		{ProductId: productA, Quantity: 2, UnitPriceCents: math.MaxInt64 / 2},
		{ProductId: productB, Quantity: 1, UnitPriceCents: 2},
	}})
	if _, err := reg.Decode(order.EventOrderCreated, 1, big); err == nil {
		t.Fatal("overflowing v1 total upcast")
	}
}

func TestUnknownEventType(t *testing.T) {
	reg := codec.NewRegistry()
	if _, err := reg.Decode("OrderLost", 1, nil); !errors.Is(err, es.ErrUnknownEventType) {
		t.Errorf("decode unknown type: %v", err)
	}
	if _, err := reg.Decode(order.EventOrderShipped, 2, nil); !errors.Is(err, es.ErrUnknownEventType) {
		t.Errorf("decode future schema version: %v", err)
	}
	if _, err := reg.Decode(order.EventOrderCreated, 3, nil); !errors.Is(err, es.ErrUnknownEventType) {
		t.Errorf("decode future OrderCreated: %v", err)
	}
	type lost struct{ es.Event }
	if _, _, err := reg.Encode(lost{order.OrderConfirmed{}}); err == nil {
		t.Errorf("encode of a foreign struct under a known name succeeded")
	}
	if _, err := codec.RenderJSON(es.Envelope{EventType: "OrderLost", SchemaVersion: 1}); !errors.Is(err, es.ErrUnknownEventType) {
		t.Errorf("render unknown type: %v", err)
	}
	if _, err := codec.RenderJSON(es.Envelope{EventType: order.EventOrderShipped, SchemaVersion: 9}); !errors.Is(err, es.ErrUnknownEventType) {
		t.Errorf("render unknown version: %v", err)
	}
	if _, err := reg.Decode(order.EventOrderShipped, 1, []byte{0xff, 0xff}); err == nil {
		t.Errorf("garbage payload decoded")
	}
}
