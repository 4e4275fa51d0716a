package codec_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
)

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
