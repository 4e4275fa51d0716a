package codec

import (
	"errors"
	"fmt"
	"maps"

	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"google.golang.org/protobuf/proto"
)

// EnvelopeToProto converts an envelope to its wire form. It copies env.Payload as is: encode the
// event first (es.Registry.EncodeEnvelope). The timestamp is sent in UTC; a zero OccurredAt is
// left unset.
func EnvelopeToProto(env es.Envelope) *ordersv1.EventEnvelope {
	var md map[string]string
	if len(env.Metadata) > 0 {
		md = maps.Clone(env.Metadata)
	}
	return &ordersv1.EventEnvelope{
		EventId:       env.EventID,
		AggregateId:   env.AggregateID,
		AggregateType: env.AggregateType,
		Sequence:      env.Sequence,
		EventType:     env.EventType,
		SchemaVersion: env.SchemaVersion,
		Payload:       env.Payload,
		CausationId:   env.CausationID,
		CorrelationId: env.CorrelationID,
		UserId:        env.UserID,
		OccurredAt:    TimestampToProto(env.OccurredAt),
		Metadata:      md,
		Traceparent:   env.TraceParent,
		Tracestate:    env.TraceState,
	}
}

// EnvelopeFromProto converts the wire form to an envelope with OccurredAt in UTC and a non-nil
// Metadata map. The event itself is not decoded: call es.Registry.DecodeEnvelope for that.
func EnvelopeFromProto(m *ordersv1.EventEnvelope) (es.Envelope, error) {
	if m == nil {
		return es.Envelope{}, errors.New("nil event envelope")
	}
	md := make(map[string]string, len(m.GetMetadata()))
	maps.Copy(md, m.GetMetadata())
	return es.Envelope{
		EventID:       m.GetEventId(),
		AggregateID:   m.GetAggregateId(),
		AggregateType: m.GetAggregateType(),
		Sequence:      m.GetSequence(),
		EventType:     m.GetEventType(),
		SchemaVersion: m.GetSchemaVersion(),
		Payload:       m.GetPayload(),
		CausationID:   m.GetCausationId(),
		CorrelationID: m.GetCorrelationId(),
		UserID:        m.GetUserId(),
		OccurredAt:    TimestampFromProto(m.GetOccurredAt()),
		Metadata:      md,
		TraceParent:   m.GetTraceparent(),
		TraceState:    m.GetTracestate(),
	}, nil
}

// MarshalEnvelope encodes an envelope as orders.v1.EventEnvelope bytes (the Kafka record value
// and the outbox row). It refuses an envelope whose event was never encoded (no event type or a
// schema version below 1), which would otherwise be stored without its payload.
func MarshalEnvelope(env es.Envelope) ([]byte, error) {
	if env.EventType == "" || env.SchemaVersion < 1 {
		return nil, fmt.Errorf("marshal envelope %s: event not encoded (event type %q, schema version %d); call Registry.EncodeEnvelope first", env, env.EventType, env.SchemaVersion)
	}
	b, err := marshalOpts.Marshal(EnvelopeToProto(env))
	if err != nil {
		return nil, fmt.Errorf("marshal envelope %s: %w", env, err)
	}
	return b, nil
}

// UnmarshalEnvelope decodes orders.v1.EventEnvelope bytes; the event itself is left encoded in
// Payload (see es.Registry.DecodeEnvelope).
func UnmarshalEnvelope(b []byte) (es.Envelope, error) {
	var m ordersv1.EventEnvelope
	if err := proto.Unmarshal(b, &m); err != nil {
		return es.Envelope{}, fmt.Errorf("unmarshal event envelope: %w", err)
	}
	return EnvelopeFromProto(&m)
}
