package kafka

import (
	"context"
	"fmt"
	"strconv"

	kafkago "github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/propagation"

	"github.com/ordersys/ordersys/pkg/es"
)

// Header names of every event record (the public contract in API.md).
const (
	HeaderEventID       = "event_id"
	HeaderEventType     = "event_type"
	HeaderEventVersion  = "event_version" // the payload's schema version
	HeaderAggregateType = "aggregate_type"
	HeaderAggregateID   = "aggregate_id"
	HeaderSequence      = "sequence"
	HeaderCorrelationID = "correlation_id"
	HeaderCausationID   = "causation_id"
	HeaderTraceParent   = "traceparent" // W3C trace context of the publishing span
	HeaderTraceState    = "tracestate"  // W3C, only when non-empty
)

// Header names added to dead letters.
const (
	// HeaderDLQReason says why the record could never be published.
	HeaderDLQReason = "dlq_reason"
	// HeaderDLQSourceTopic names the topic the record was meant for.
	HeaderDLQSourceTopic = "dlq_source_topic"
	// HeaderDLQID is the id of the dead letter's row in the store (for re-drive).
	HeaderDLQID = "dlq_id"
	// HeaderDLQValueOmitted is set when the value was left out because it is too large ("true"
	// from the relay, the value's size in bytes from the projector); the full value is kept in
	// the store.
	HeaderDLQValueOmitted = "dlq_value_omitted"
)

// DLQSuffix is appended to a topic's name to form its dead-letter topic.
const DLQSuffix = ".dlq"

// DLQTopic returns the dead-letter topic of topic.
func DLQTopic(topic string) string { return topic + DLQSuffix }

// ProjectorDLQSuffix is appended to an event topic's name to form the projector's dead-letter
// topic (the relay's is DLQSuffix).
const ProjectorDLQSuffix = ".projector.dlq"

// EnvelopeHeaders returns the record headers of an event. traceparent and tracestate are those of
// the span that publishes the record (pass the envelope's own to forward the command's context);
// tracestate is left out when empty.
func EnvelopeHeaders(env es.Envelope, traceparent, tracestate string) []kafkago.Header {
	hs := []kafkago.Header{
		{Key: HeaderEventID, Value: []byte(env.EventID)},
		{Key: HeaderEventType, Value: []byte(env.EventType)},
		{Key: HeaderEventVersion, Value: []byte(strconv.FormatInt(int64(env.SchemaVersion), 10))},
		{Key: HeaderAggregateType, Value: []byte(env.AggregateType)},
		{Key: HeaderAggregateID, Value: []byte(env.AggregateID)},
		{Key: HeaderSequence, Value: []byte(strconv.FormatInt(env.Sequence, 10))},
		{Key: HeaderCorrelationID, Value: []byte(env.CorrelationID)},
		{Key: HeaderCausationID, Value: []byte(env.CausationID)},
		{Key: HeaderTraceParent, Value: []byte(traceparent)},
	}
	if tracestate != "" {
		hs = append(hs, kafkago.Header{Key: HeaderTraceState, Value: []byte(tracestate)})
	}
	return hs
}

// EventHeaders is the parsed form of an event record's headers.
type EventHeaders struct {
	EventID, EventType         string
	EventVersion               int32
	AggregateType, AggregateID string
	Sequence                   int64
	CorrelationID, CausationID string
	TraceParent, TraceState    string
}

// ParseHeaders reads the event headers of a record. It fails when event_id, aggregate_id or
// sequence is missing, or a number does not parse.
func ParseHeaders(hs []kafkago.Header) (EventHeaders, error) {
	var h EventHeaders
	var seq, ver string
	for _, x := range hs {
		v := string(x.Value)
		switch x.Key {
		case HeaderEventID:
			h.EventID = v
		case HeaderEventType:
			h.EventType = v
		case HeaderEventVersion:
			ver = v
		case HeaderAggregateType:
			h.AggregateType = v
		case HeaderAggregateID:
			h.AggregateID = v
		case HeaderSequence:
			seq = v
		case HeaderCorrelationID:
			h.CorrelationID = v
		case HeaderCausationID:
			h.CausationID = v
		case HeaderTraceParent:
			h.TraceParent = v
		case HeaderTraceState:
			h.TraceState = v
		}
	}
	if h.EventID == "" || h.AggregateID == "" || seq == "" {
		return h, fmt.Errorf("event headers: missing %s, %s or %s", HeaderEventID, HeaderAggregateID, HeaderSequence)
	}
	n, err := strconv.ParseInt(seq, 10, 64)
	if err != nil {
		return h, fmt.Errorf("event headers: %s %q: %w", HeaderSequence, seq, err)
	}
	h.Sequence = n
	if ver != "" {
		v, err := strconv.ParseInt(ver, 10, 32)
		if err != nil {
			return h, fmt.Errorf("event headers: %s %q: %w", HeaderEventVersion, ver, err)
		}
		h.EventVersion = int32(v)
	}
	return h, nil
}

// Header returns the value of the first header named key.
func Header(hs []kafkago.Header, key string) (string, bool) {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// SetHeader replaces the headers named key by one with value (appending it when absent).
func SetHeader(hs []kafkago.Header, key, value string) []kafkago.Header {
	out := hs[:0:0]
	for _, h := range hs {
		if h.Key != key {
			out = append(out, h)
		}
	}
	return append(out, kafkago.Header{Key: key, Value: []byte(value)})
}

// HeaderCarrier adapts record headers to OpenTelemetry's TextMapCarrier, so the W3C propagator
// can inject into and extract from them.
type HeaderCarrier struct{ Headers *[]kafkago.Header }

var _ propagation.TextMapCarrier = HeaderCarrier{}

// Get returns the value of the header named key.
func (c HeaderCarrier) Get(key string) string {
	v, _ := Header(*c.Headers, key)
	return v
}

// Set replaces the header named key.
func (c HeaderCarrier) Set(key, value string) { *c.Headers = SetHeader(*c.Headers, key, value) }

// Keys lists the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(*c.Headers))
	for _, h := range *c.Headers {
		keys = append(keys, h.Key)
	}
	return keys
}

// ContextFromMessage returns ctx carrying the remote span context of the record's traceparent and
// tracestate headers, so a consumer's span continues the producer's trace.
func ContextFromMessage(ctx context.Context, msg kafkago.Message) context.Context {
	hs := msg.Headers
	return propagation.TraceContext{}.Extract(ctx, HeaderCarrier{Headers: &hs})
}
