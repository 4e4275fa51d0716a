package es

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Upcaster turns a payload stored at one schema version into the payload of the next version.
type Upcaster func(payload []byte) ([]byte, error)

// EventCodec encodes and decodes one event type at its current schema version.
type EventCodec struct {
	// AggregateType is the aggregate kind the event belongs to.
	AggregateType string
	// SchemaVersion is the current schema version: new events are stored with it.
	SchemaVersion int32
	// Encode turns the event into its payload.
	Encode func(Event) ([]byte, error)
	// Decode turns a payload of the current schema version into the event.
	Decode func([]byte) (Event, error)
}

type registryEntry struct {
	codec     EventCodec
	upcasters map[int32]Upcaster // from version → next
}

// Registry knows every event type: its current schema version, how to encode and decode it,
// and how to upcast payloads stored at older schema versions. It is safe for concurrent use once
// filled; fill it at start-up.
type Registry struct {
	mu      sync.RWMutex
	entries map[string]*registryEntry
	sealer  PayloadSealer
}

// PayloadSealer transforms the stored form of payloads: Seal runs on an envelope whose payload
// was just encoded (it may replace env.Payload, e.g. by encrypting part of it), Open returns the
// payload to decode from a stored one (it must not change env). Both leave payloads of event
// types they do not cover alone. The registry of a process that may not read personal data has
// none, and decodes stored payloads as they are.
type PayloadSealer interface {
	Seal(ctx context.Context, env *Envelope) error
	Open(ctx context.Context, env *Envelope) ([]byte, error)
}

// SetSealer makes EncodeEnvelope seal and DecodeEnvelope open every payload through s (nil:
// payloads are stored and decoded as encoded). Set it at start-up, before any use.
func (r *Registry) SetSealer(s PayloadSealer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sealer = s
}

func (r *Registry) payloadSealer() PayloadSealer {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.sealer
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{entries: map[string]*registryEntry{}} }

// Register adds an event type. Registering a type twice is a programming error and panics.
func (r *Registry) Register(eventType string, c EventCodec) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.entries[eventType]; dup {
		panic("es: event type registered twice: " + eventType)
	}
	if c.SchemaVersion < 1 || c.Encode == nil || c.Decode == nil {
		panic("es: incomplete codec for " + eventType)
	}
	r.entries[eventType] = &registryEntry{codec: c, upcasters: map[int32]Upcaster{}}
}

// RegisterUpcaster adds the step that turns a payload of schema version from into from+1.
func (r *Registry) RegisterUpcaster(eventType string, from int32, up Upcaster) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[eventType]
	if !ok {
		panic("es: upcaster for unregistered event type " + eventType)
	}
	if from < 1 || from >= e.codec.SchemaVersion {
		panic(fmt.Sprintf("es: upcaster %s v%d→v%d outside 1..%d", eventType, from, from+1, e.codec.SchemaVersion))
	}
	e.upcasters[from] = up
}

func (r *Registry) entry(eventType string) (*registryEntry, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.entries[eventType]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownEventType, eventType)
	}
	return e, nil
}

// Encode returns the payload of the event and the schema version it is written at.
func (r *Registry) Encode(e Event) ([]byte, int32, error) {
	ent, err := r.entry(e.EventType())
	if err != nil {
		return nil, 0, err
	}
	b, err := ent.codec.Encode(e)
	if err != nil {
		return nil, 0, fmt.Errorf("encode %s: %w", e.EventType(), err)
	}
	return b, ent.codec.SchemaVersion, nil
}

// Upcast brings a payload stored at schema version v to the current version.
func (r *Registry) Upcast(eventType string, v int32, payload []byte) ([]byte, int32, error) {
	ent, err := r.entry(eventType)
	if err != nil {
		return nil, 0, err
	}
	cur := ent.codec.SchemaVersion
	if v < 1 || v > cur {
		return nil, 0, fmt.Errorf("%w: %s schema version %d (current %d)", ErrUnknownEventType, eventType, v, cur)
	}
	for ; v < cur; v++ {
		up, ok := ent.upcasters[v]
		if !ok {
			return nil, 0, fmt.Errorf("%w: no upcaster for %s v%d→v%d", ErrUnknownEventType, eventType, v, v+1)
		}
		if payload, err = up(payload); err != nil {
			return nil, 0, fmt.Errorf("upcast %s v%d→v%d: %w", eventType, v, v+1, err)
		}
	}
	return payload, cur, nil
}

// Decode turns a stored payload into the event, upcasting it first when it was stored at an
// older schema version.
func (r *Registry) Decode(eventType string, v int32, payload []byte) (Event, error) {
	ent, err := r.entry(eventType)
	if err != nil {
		return nil, err
	}
	payload, _, err = r.Upcast(eventType, v, payload)
	if err != nil {
		return nil, err
	}
	ev, err := ent.codec.Decode(payload)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", eventType, err)
	}
	return ev, nil
}

// EncodeEnvelope fills env.Payload and env.SchemaVersion from env.Event (sealed when the
// registry has a sealer; see EncodeEnvelopeContext).
func (r *Registry) EncodeEnvelope(env *Envelope) error {
	return r.EncodeEnvelopeContext(context.Background(), env)
}

// EncodeEnvelopeContext fills env.Payload and env.SchemaVersion from env.Event, then seals the
// payload when the registry has a sealer (SetSealer).
func (r *Registry) EncodeEnvelopeContext(ctx context.Context, env *Envelope) error {
	b, v, err := r.Encode(env.Event)
	if err != nil {
		return fmt.Errorf("%s: %w", env, err)
	}
	env.Payload, env.SchemaVersion, env.EventType = b, v, env.Event.EventType()
	if s := r.payloadSealer(); s != nil {
		if err := s.Seal(ctx, env); err != nil {
			return fmt.Errorf("%s: seal: %w", env, err)
		}
	}
	return nil
}

// DecodeEnvelope fills env.Event from env.Payload, upcasting as needed; SchemaVersion is left as
// stored so callers can see the event was upcast (see DecodeEnvelopeContext).
func (r *Registry) DecodeEnvelope(env *Envelope) error {
	return r.DecodeEnvelopeContext(context.Background(), env)
}

// DecodeEnvelopeContext fills env.Event from env.Payload, opened first by the registry's sealer
// if it has one, and upcast as needed. env.Payload stays as stored.
func (r *Registry) DecodeEnvelopeContext(ctx context.Context, env *Envelope) error {
	payload := env.Payload
	if s := r.payloadSealer(); s != nil {
		p, err := s.Open(ctx, env)
		if err != nil {
			return fmt.Errorf("%s: open: %w", env, err)
		}
		payload = p
	}
	ev, err := r.Decode(env.EventType, env.SchemaVersion, payload)
	if err != nil {
		return fmt.Errorf("%s: %w", env, err)
	}
	env.Event = ev
	return nil
}

// OpenPayload returns the payload of a stored envelope as the registry's sealer opens it (the
// stored payload itself when there is no sealer): what a reader with key access renders.
func (r *Registry) OpenPayload(ctx context.Context, env *Envelope) ([]byte, error) {
	if s := r.payloadSealer(); s != nil {
		return s.Open(ctx, env)
	}
	return env.Payload, nil
}

// AggregateTypeOf returns the aggregate kind an event type belongs to.
func (r *Registry) AggregateTypeOf(eventType string) (string, error) {
	ent, err := r.entry(eventType)
	if err != nil {
		return "", err
	}
	return ent.codec.AggregateType, nil
}

// EventTypes lists the registered event types, sorted.
func (r *Registry) EventTypes() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.entries))
	for k := range r.entries {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
