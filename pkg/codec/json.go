package codec

import (
	"fmt"
	"maps"

	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// jsonOpts renders payloads with the proto field names and every field, so that a reader sees
// zero values (a total of 0, an empty reason) instead of missing keys. As protojson warns, the
// exact spacing is not stable: parse the output, do not compare it byte for byte.
var jsonOpts = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// RenderJSON renders the envelope's event as JSON for humans: the protojson form of its
// orders.v1 message at the current schema version. When env.Event is set it is rendered;
// otherwise the payload is decoded, upcast first if it was stored at an older schema version.
// An unknown event type or schema version matches es.ErrUnknownEventType.
func RenderJSON(env es.Envelope) (string, error) {
	eventType := env.EventType
	if env.Event != nil {
		eventType = env.Event.EventType()
	}
	k, ok := kinds[eventType]
	if !ok {
		return "", fmt.Errorf("render %s: %w: %q", env, es.ErrUnknownEventType, eventType)
	}
	var m proto.Message
	if env.Event != nil {
		var err error
		if m, err = k.toProto(env.Event); err != nil {
			return "", fmt.Errorf("render %s: %w", env, err)
		}
	} else {
		payload, _, err := defaultRegistry().Upcast(eventType, env.SchemaVersion, env.Payload)
		if err != nil {
			return "", fmt.Errorf("render %s: %w", env, err)
		}
		m = k.newMsg()
		if err := proto.Unmarshal(payload, m); err != nil {
			return "", fmt.Errorf("render %s: decode payload: %w", env, err)
		}
	}
	b, err := jsonOpts.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("render %s: %w", env, err)
	}
	return string(b), nil
}

// HistoryEvent renders a stored envelope as the orders.v1.HistoryEvent of GetOrderHistory, with
// the payload as JSON (see RenderJSON, so the payload is upcast while SchemaVersion stays as
// stored). Version is the aggregate's version after the event, which equals the sequence.
func HistoryEvent(env es.Envelope) (*ordersv1.HistoryEvent, error) {
	js, err := RenderJSON(env)
	if err != nil {
		return nil, err
	}
	var md map[string]string
	if len(env.Metadata) > 0 {
		md = maps.Clone(env.Metadata)
	}
	return &ordersv1.HistoryEvent{
		EventId:       env.EventID,
		Sequence:      env.Sequence,
		EventType:     env.EventType,
		SchemaVersion: env.SchemaVersion,
		Version:       env.Sequence,
		OccurredAt:    TimestampToProto(env.OccurredAt),
		CorrelationId: env.CorrelationID,
		CausationId:   env.CausationID,
		UserId:        env.UserID,
		PayloadJson:   js,
		Metadata:      md,
	}, nil
}
