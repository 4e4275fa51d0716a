package es

import (
	"fmt"
	"time"
)

// Aggregate is one consistency boundary whose state is rebuilt from its own events.
//
// A fresh aggregate (version 0) accepts only its creation event as the first event; every later
// event is applied in sequence. Apply must accept every event the aggregate itself decided: rules
// are checked when deciding, never when applying, so history always replays.
type Aggregate interface {
	// AggregateType names the aggregate kind, e.g. "Order".
	AggregateType() string
	// AggregateID is the aggregate's UUID.
	AggregateID() string
	// Version is the sequence of the last applied event (0 before the first).
	Version() int64
	// Apply changes the state by one event that occurred at the given time.
	Apply(e Event, at time.Time) error
	// SetVersion records the version reached; used by Replay and by snapshot restore.
	SetVersion(v int64)
}

// Root holds the identity and version that every aggregate has; domain aggregates embed it.
type Root struct {
	id      string
	version int64
}

// NewRoot returns a Root for the aggregate with the given id, at version 0.
func NewRoot(id string) Root { return Root{id: id} }

// AggregateID returns the aggregate's id.
func (r *Root) AggregateID() string { return r.id }

// Version returns the sequence of the last applied event.
func (r *Root) Version() int64 { return r.version }

// SetVersion records the version reached.
func (r *Root) SetVersion(v int64) { r.version = v }

// ApplyEnvelope applies one stored event, checking that it belongs to the aggregate and is the
// next in sequence. A gap or a repeat is an error: history must be dense.
func ApplyEnvelope(a Aggregate, env Envelope) error {
	if env.AggregateID != a.AggregateID() {
		return fmt.Errorf("apply %s: event belongs to aggregate %s, not %s", env.EventType, env.AggregateID, a.AggregateID())
	}
	if want := a.Version() + 1; env.Sequence != want {
		return fmt.Errorf("apply %s to %s: sequence %d, want %d: %w", env.EventType, a.AggregateID(), env.Sequence, want, ErrSequenceGap)
	}
	if env.Event == nil {
		return fmt.Errorf("apply %s to %s#%d: envelope holds no decoded event", env.EventType, a.AggregateID(), env.Sequence)
	}
	if err := a.Apply(env.Event, env.OccurredAt); err != nil {
		return fmt.Errorf("apply %s to %s#%d: %w", env.EventType, a.AggregateID(), env.Sequence, err)
	}
	a.SetVersion(env.Sequence)
	return nil
}

// Replay applies the envelopes in order to the aggregate.
func Replay(a Aggregate, envs []Envelope) error {
	for _, env := range envs {
		if err := ApplyEnvelope(a, env); err != nil {
			return err
		}
	}
	return nil
}

// NewEnvelopes wraps freshly decided events for the aggregate at its current version: sequences
// continue from a.Version()+1 and every envelope gets the command's metadata. newID must return
// a fresh UUID string per call.
func NewEnvelopes(a Aggregate, events []Event, meta Metadata, at time.Time, newID func() string) []Envelope {
	out := make([]Envelope, 0, len(events))
	for i, e := range events {
		md := make(map[string]string, len(meta.Extra))
		for k, v := range meta.Extra {
			md[k] = v
		}
		out = append(out, Envelope{
			EventID:       newID(),
			AggregateID:   a.AggregateID(),
			AggregateType: a.AggregateType(),
			Sequence:      a.Version() + int64(i) + 1,
			EventType:     e.EventType(),
			Event:         e,
			CausationID:   meta.CausationID,
			CorrelationID: meta.CorrelationID,
			UserID:        meta.UserID,
			OccurredAt:    at.UTC(),
			Metadata:      md,
			TraceParent:   meta.TraceParent,
			TraceState:    meta.TraceState,
		})
	}
	return out
}
