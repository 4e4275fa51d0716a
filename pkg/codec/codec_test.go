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
	"google.golang.org/protobuf/types/known/timestamppb"
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

func fullEnvelope() es.Envelope {
	return es.Envelope{
		EventID:       ids.New(),
		AggregateID:   orderID,
		AggregateType: order.AggregateType,
		Sequence:      7,
		EventType:     order.EventOrderShipped,
		SchemaVersion: 1,
		Payload:       []byte{0x0a, 0x02, 'T', '1'},
		CausationID:   ids.New(),
		CorrelationID: ids.New(),
		UserID:        "user-42",
		OccurredAt:    t0,
		Metadata:      map[string]string{"source": "test", "tenant": "acme"},
		TraceParent:   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		TraceState:    "vendor=x",
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	env := fullEnvelope()
	b, err := codec.MarshalEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	got, err := codec.UnmarshalEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.OccurredAt.Location() != time.UTC || !got.OccurredAt.Equal(t0) {
		t.Fatalf("occurred at %v", got.OccurredAt)
	}
	want := env
	want.OccurredAt = t0.UTC()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip\n got %+v\nwant %+v", got, want)
	}
	// every field reached the wire message
	m := codec.EnvelopeToProto(env)
	if m.GetOccurredAt().AsTime() != t0.UTC() || m.GetTraceparent() != env.TraceParent || m.GetTracestate() != env.TraceState ||
		m.GetUserId() != "user-42" || m.GetMetadata()["tenant"] != "acme" || m.GetSequence() != 7 || m.GetSchemaVersion() != 1 {
		t.Fatalf("proto %v", m)
	}
	// the proto message does not alias the envelope's metadata
	m.Metadata["source"] = "changed"
	if env.Metadata["source"] != "test" {
		t.Fatal("EnvelopeToProto aliases Metadata")
	}
}

func TestEnvelopeEdgeCases(t *testing.T) {
	env := fullEnvelope()
	env.SchemaVersion = 0
	if _, err := codec.MarshalEnvelope(env); err == nil {
		t.Error("envelope without an encoded event marshalled")
	}
	if _, err := codec.UnmarshalEnvelope([]byte{0xff}); err == nil {
		t.Error("garbage unmarshalled")
	}
	if _, err := codec.EnvelopeFromProto(nil); err == nil {
		t.Error("nil message converted")
	}
	// a minimal envelope: zero time stays zero, metadata is an empty map
	got, err := codec.EnvelopeFromProto(&ordersv1.EventEnvelope{EventType: "OrderConfirmed", SchemaVersion: 1})
	if err != nil || !got.OccurredAt.IsZero() || got.Metadata == nil || len(got.Metadata) != 0 {
		t.Fatalf("minimal %+v %v", got, err)
	}
	if codec.EnvelopeToProto(es.Envelope{}).GetOccurredAt() != nil {
		t.Error("zero time sent as a timestamp")
	}
}

// TestEventsThroughTheWire takes freshly decided events the way the command service does
// (NewEnvelopes, EncodeEnvelope, MarshalEnvelope) and reads them back the way a consumer does.
func TestEventsThroughTheWire(t *testing.T) {
	reg := codec.NewRegistry()
	o := order.New(orderID)
	evs, err := o.Decide(order.Create{Customer: order.CustomerActive, OrderID: orderID, CustomerID: customerID, Items: items()}, t0)
	if err != nil {
		t.Fatal(err)
	}
	envs := es.NewEnvelopes(o, evs, es.Metadata{CausationID: ids.New(), CorrelationID: ids.New(), Extra: map[string]string{"k": "v"}}, t0, ids.New)
	for i := range envs {
		if err := reg.EncodeEnvelope(&envs[i]); err != nil {
			t.Fatal(err)
		}
		b, err := codec.MarshalEnvelope(envs[i])
		if err != nil {
			t.Fatal(err)
		}
		got, err := codec.UnmarshalEnvelope(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.DecodeEnvelope(&got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, envs[i]) {
			t.Fatalf("wire round trip\n got %+v\nwant %+v", got, envs[i])
		}
	}
}

func TestRenderJSON(t *testing.T) {
	reg := codec.NewRegistry()
	for _, ev := range sampleEvents() {
		env := es.Envelope{EventType: ev.EventType(), Event: ev}
		fromEvent, err := codec.RenderJSON(env)
		if err != nil {
			t.Fatalf("%s: %v", ev.EventType(), err)
		}
		if err := reg.EncodeEnvelope(&env); err != nil {
			t.Fatal(err)
		}
		env.Event = nil
		fromPayload, err := codec.RenderJSON(env)
		if err != nil {
			t.Fatalf("%s: %v", ev.EventType(), err)
		}
		var a, b map[string]any
		if err := json.Unmarshal([]byte(fromEvent), &a); err != nil {
			t.Fatalf("%s: %v in %s", ev.EventType(), err, fromEvent)
		}
		if err := json.Unmarshal([]byte(fromPayload), &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s: %s vs %s", ev.EventType(), fromEvent, fromPayload)
		}
	}
	js, err := codec.RenderJSON(es.Envelope{Event: sampleEvents()[0]})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OrderID    string `json:"order_id"`
		TotalCents string `json:"total_cents"`
		Items      []struct {
			ProductID string `json:"product_id"`
			Quantity  int    `json:"quantity"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(js), &doc); err != nil || doc.OrderID != orderID || doc.TotalCents != "2797" || len(doc.Items) != 2 || doc.Items[1].Quantity != 3 {
		t.Fatalf("json %s (%v)", js, err)
	}
	// zero values are shown, not dropped
	js, _ = codec.RenderJSON(es.Envelope{Event: order.OrderCancelled{}})
	if !strings.Contains(js, `"reason"`) {
		t.Fatalf("json %s", js)
	}
}

func TestHistoryEvent(t *testing.T) {
	reg := codec.NewRegistry()
	env := fullEnvelope()
	env.Event = order.OrderShipped{TrackingNumber: "T1", Carrier: "DHL"}
	if err := reg.EncodeEnvelope(&env); err != nil {
		t.Fatal(err)
	}
	env.Event = nil
	h, err := codec.HistoryEvent(env)
	if err != nil {
		t.Fatal(err)
	}
	if h.GetEventId() != env.EventID || h.GetSequence() != 7 || h.GetVersion() != 7 || h.GetEventType() != "OrderShipped" ||
		h.GetSchemaVersion() != 1 || !h.GetOccurredAt().AsTime().Equal(t0) || h.GetCorrelationId() != env.CorrelationID ||
		h.GetCausationId() != env.CausationID || h.GetUserId() != "user-42" || h.GetMetadata()["tenant"] != "acme" ||
		!strings.Contains(h.GetPayloadJson(), `"DHL"`) {
		t.Fatalf("history event %v", h)
	}
}

// drive decides and applies commands on an aggregate through envelopes, returning them.
func drive[A interface {
	es.Aggregate
	Decide(C, time.Time) ([]es.Event, error)
}, C any](t *testing.T, a A, cmds ...C) []es.Envelope {
	t.Helper()
	var all []es.Envelope
	now := t0
	for _, c := range cmds {
		now = now.Add(time.Hour)
		evs, err := a.Decide(c, now)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		envs := es.NewEnvelopes(a, evs, es.Metadata{}, now, ids.New)
		if err := es.Replay(a, envs); err != nil {
			t.Fatal(err)
		}
		all = append(all, envs...)
	}
	return all
}

func snapshotRoundTrip(t *testing.T, sc es.SnapshotCodec, a es.Aggregate) es.Aggregate {
	t.Helper()
	state, err := sc.Take(a)
	if err != nil {
		t.Fatal(err)
	}
	got, err := sc.Restore(es.Snapshot{
		AggregateID: a.AggregateID(), AggregateType: a.AggregateType(), Version: a.Version(),
		SchemaVersion: sc.SchemaVersion(), State: state, TakenAt: t0,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("restored\n%+v\nwant\n%+v", got, a)
	}
	return got
}

func TestOrderSnapshotRoundTrip(t *testing.T) {
	o := order.New(orderID)
	drive[*order.Order, order.Command](t, o,
		order.Create{Customer: order.CustomerActive, OrderID: orderID, CustomerID: customerID, Items: items()},
		order.UpdateItems{Items: items()[:1], Reason: "split"},
		order.Confirm{},
		order.Ship{TrackingNumber: "1Z", Carrier: "UPS"},
	)
	sc := codec.SnapshotCodecs()[order.AggregateType]
	restored := snapshotRoundTrip(t, sc, o).(*order.Order)
	if restored.Version() != 4 {
		t.Fatalf("version %d", restored.Version())
	}
	// the restored order goes on deciding and applying like the original
	drive[*order.Order, order.Command](t, restored, order.Deliver{Signature: "ok"})
	drive[*order.Order, order.Command](t, o, order.Deliver{Signature: "ok"})
	if restored.Version() != 5 || restored.Status != order.StatusDelivered || !restored.CreatedAt.Equal(o.CreatedAt) {
		t.Fatalf("after restore %+v", restored)
	}
	snapshotRoundTrip(t, sc, o)

	cancelled := order.New(orderID)
	drive[*order.Order, order.Command](t, cancelled,
		order.Create{Customer: order.CustomerActive, OrderID: orderID, CustomerID: customerID, Items: items()},
		order.Cancel{Reason: "dup", CancelledBy: "me"})
	snapshotRoundTrip(t, sc, cancelled)
}

func TestCustomerSnapshotRoundTrip(t *testing.T) {
	c := customer.New(customerID)
	second := addrFull
	second.AddressID, second.IsDefault, second.Label = addr2, false, ""
	wallet := customer.PaymentMethod{PaymentMethodID: pm2, Kind: customer.KindWallet, Brand: "paypal"}
	drive[*customer.Customer, customer.Command](t, c,
		customer.Register{CustomerID: customerID, Email: "jane@example.com", FirstName: "Jane", LastName: "Doe", Phone: "+4915112345678"},
		customer.AddAddress{Address: addrFull},
		customer.AddAddress{Address: second},
		customer.AddPaymentMethod{PaymentMethod: cardFull},
		customer.AddPaymentMethod{PaymentMethod: wallet},
		customer.UpgradeTier{Tier: customer.TierGold},
		customer.Suspend{Reason: "review"},
	)
	sc := codec.SnapshotCodecs()[customer.AggregateType]
	restored := snapshotRoundTrip(t, sc, c).(*customer.Customer)
	if restored.Version() != 7 || len(restored.Addresses) != 2 || len(restored.PaymentMethods) != 2 {
		t.Fatalf("restored %+v", restored)
	}
	// snapshot + later events = full replay
	drive[*customer.Customer, customer.Command](t, restored, customer.Reactivate{}, customer.RemoveAddress{AddressID: addr1})
	drive[*customer.Customer, customer.Command](t, c, customer.Reactivate{}, customer.RemoveAddress{AddressID: addr1})
	snapshotRoundTrip(t, sc, c)
	if !reflect.DeepEqual(restored, c) {
		t.Fatal("snapshot + events differs from the original")
	}
	// empty collections come back as nil, like the domain keeps them
	bare := customer.New(customerID)
	drive[*customer.Customer, customer.Command](t, bare,
		customer.Register{CustomerID: customerID, Email: "a@b.de", FirstName: "A", LastName: "B"})
	snapshotRoundTrip(t, sc, bare)
}

func TestSnapshotRefusals(t *testing.T) {
	o := order.New(orderID)
	drive[*order.Order, order.Command](t, o, order.Create{Customer: order.CustomerActive, OrderID: orderID, CustomerID: customerID, Items: items()})
	oc, cc := codec.OrderSnapshotCodec{}, codec.CustomerSnapshotCodec{}
	state, err := oc.Take(o)
	if err != nil {
		t.Fatal(err)
	}
	good := es.Snapshot{AggregateID: orderID, AggregateType: order.AggregateType, Version: 1, SchemaVersion: 1, State: state}
	bad := func(f func(*es.Snapshot)) es.Snapshot { s := good; f(&s); return s }
	for name, s := range map[string]es.Snapshot{
		"schema version 2": bad(func(s *es.Snapshot) { s.SchemaVersion = 2 }),
		"schema version 0": bad(func(s *es.Snapshot) { s.SchemaVersion = 0 }),
		"customer type":    bad(func(s *es.Snapshot) { s.AggregateType = customer.AggregateType }),
		"other id":         bad(func(s *es.Snapshot) { s.AggregateID = customerID }),
		"version 0":        bad(func(s *es.Snapshot) { s.Version = 0 }),
		"garbage":          bad(func(s *es.Snapshot) { s.State = []byte{0xff} }),
		"no status":        bad(func(s *es.Snapshot) { s.State, _ = proto.Marshal(&ordersv1.OrderSnapshot{OrderId: orderID}) }),
	} {
		if _, err := oc.Restore(s); err == nil {
			t.Errorf("%s: restored", name)
		}
	}
	if _, err := cc.Restore(good); err == nil {
		t.Error("customer codec restored an order")
	}
	if _, err := cc.Take(o); err == nil {
		t.Error("customer codec took an order")
	}
	if _, err := oc.Take(customer.New(customerID)); err == nil {
		t.Error("order codec took a customer")
	}
	noStatus, _ := proto.Marshal(&ordersv1.CustomerSnapshot{CustomerId: customerID})
	if _, err := cc.Restore(es.Snapshot{AggregateID: customerID, Version: 1, SchemaVersion: 1, State: noStatus}); err == nil {
		t.Error("customer snapshot without status restored")
	}
}

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
