package es

import (
	"errors"
	"fmt"
	"time"

	"github.com/ordersys/ordersys/pkg/domain/ids"
)

// Event is a domain event: a fact that happened to one aggregate, named in the past tense.
type Event interface {
	// EventType is the stable name under which the event is stored, e.g. "OrderCreated".
	EventType() string
}

// Envelope carries one event with everything needed to store, publish and trace it.
type Envelope struct {
	// EventID is the event's UUID; it makes redelivery detectable.
	EventID string
	// AggregateID is the UUID of the aggregate the event belongs to.
	AggregateID string
	// AggregateType names the aggregate kind, e.g. "Order" or "Customer".
	AggregateType string
	// Sequence is the event's position in its aggregate's stream (1, 2, … dense); it equals the
	// aggregate's version once the event is applied.
	Sequence int64
	// EventType is the stored event name; it equals Event.EventType() when Event is set.
	EventType string
	// SchemaVersion is the version of the payload's schema as stored.
	SchemaVersion int32
	// Event is the decoded domain event (nil when only Payload is known).
	Event Event
	// Payload is the encoded event, as stored and published.
	Payload []byte
	// CausationID is the id of what caused the event: the command id.
	CausationID string
	// CorrelationID groups everything one user request set in motion.
	CorrelationID string
	// UserID is the caller on whose behalf the command ran (may be empty).
	UserID string
	// OccurredAt is when the command that produced the event was decided (UTC).
	OccurredAt time.Time
	// Metadata holds free-form string attributes.
	Metadata map[string]string
	// TraceParent is the W3C traceparent of the span that produced the event.
	TraceParent string
	// TraceState is the W3C tracestate that goes with TraceParent.
	TraceState string
}

// String renders the envelope's identity for logs.
func (e Envelope) String() string {
	return fmt.Sprintf("%s %s#%d %s(v%d) id=%s", e.AggregateType, e.AggregateID, e.Sequence, e.EventType, e.SchemaVersion, e.EventID)
}

// Folded returns the envelope with only the fields that rebuilding an aggregate's state reads
// (es.ApplyEnvelope, and a replay up to a point in time): the aggregate's id and type, the
// sequence, the event (type, schema version, payload, decoded event) and when it occurred. The
// event id, metadata and trace context are left empty. EventStore.Load returns envelopes in
// this form; LoadRange returns them whole.
func Folded(e Envelope) Envelope {
	return Envelope{AggregateID: e.AggregateID, AggregateType: e.AggregateType, Sequence: e.Sequence, EventType: e.EventType,
		SchemaVersion: e.SchemaVersion, Event: e.Event, Payload: e.Payload, OccurredAt: e.OccurredAt}
}

// Metadata is the part of an envelope that comes from the command rather than the domain.
type Metadata struct {
	// CausationID is the command id.
	CausationID string
	// CorrelationID is the request's correlation id.
	CorrelationID string
	// UserID is the caller (may be empty).
	UserID string
	// TraceParent and TraceState are the W3C trace context of the command's span.
	TraceParent, TraceState string
	// Extra is copied into every envelope's Metadata.
	Extra map[string]string
}

// ErrMalformedEnvelope marks an envelope whose identity (ids, sequence, event type, schema
// version) breaks the contract every service shares; see Envelope.Check.
var ErrMalformedEnvelope = errors.New("malformed event envelope")

// Check reports whether the envelope's identity is what every service accepts: event and
// aggregate ids valid and canonical (ids.Valid, ids.Canonical), the aggregate type named, a
// sequence of at least 1, an event type and a schema version of at least 1. The event store
// refuses to append an envelope that fails it, and the relay and the projector apply the same
// check to what they read, so a writer can never store what a reader would refuse. The error
// wraps ErrMalformedEnvelope and names the first field that fails.
func (e Envelope) Check() error {
	bad := func(field, reason string) error {
		return fmt.Errorf("%w: %s %s", ErrMalformedEnvelope, field, reason)
	}
	switch {
	case !ids.Valid(e.EventID) || ids.Canonical(e.EventID) != e.EventID:
		return bad("event_id", fmt.Sprintf("%q: %s, in lower case", e.EventID, ids.Reason))
	case !ids.Valid(e.AggregateID) || ids.Canonical(e.AggregateID) != e.AggregateID:
		return bad("aggregate_id", fmt.Sprintf("%q: %s, in lower case", e.AggregateID, ids.Reason))
	case e.AggregateType == "":
		return bad("aggregate_type", "is empty")
	case e.Sequence < 1:
		return bad("sequence", fmt.Sprintf("is %d, must be at least 1", e.Sequence))
	case e.EventType == "":
		return bad("event_type", "is empty")
	case e.SchemaVersion < 1:
		return bad("schema_version", fmt.Sprintf("is %d, must be at least 1", e.SchemaVersion))
	}
	return nil
}

// CheckRow is Check plus the identity of the stored row the envelope was read from (its
// aggregate, sequence and, when known, event id): what the relay checks before it publishes an
// outbox row.
func (e Envelope) CheckRow(aggregateID string, sequence int64, eventID string) error {
	if err := e.Check(); err != nil {
		return err
	}
	switch {
	case e.AggregateID != aggregateID, e.Sequence != sequence:
		return fmt.Errorf("%w: envelope is %s#%d, row says %s#%d", ErrMalformedEnvelope, e.AggregateID, e.Sequence, aggregateID, sequence)
	case eventID != "" && e.EventID != eventID:
		return fmt.Errorf("%w: envelope event id %s, row says %s", ErrMalformedEnvelope, e.EventID, eventID)
	}
	return nil
}
