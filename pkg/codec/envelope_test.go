package codec_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

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
