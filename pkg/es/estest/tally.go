package estest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ordersys/ordersys/pkg/es"
)

// The suite's own aggregate, a tally of priced lines, so that it depends on no domain: its
// events go through an es.Registry like any domain's, with JSON payloads, one event type at
// schema version 2 whose version 1 payloads are upcast on load, and one whose payload is empty.
const (
	// tallyType is the aggregate type of the suite's streams and snapshots.
	tallyType = "EstestTally"
	// eventOpened creates a tally; schema version 2 (version 1 had "items" and no total).
	eventOpened = "EstestTallyOpened"
	// eventLinesSet replaces a tally's lines; schema version 1.
	eventLinesSet = "EstestTallyLinesSet"
	// eventChecked marks a tally as checked (empty payload); schema version 1, may repeat.
	eventChecked = "EstestTallyChecked"
	// openedSchemaVersion is the current schema version of eventOpened.
	openedSchemaVersion = 2
)

// line is one priced line of a tally.
type line struct {
	SKU        string `json:"sku"`
	Quantity   int32  `json:"quantity"`
	PriceCents int64  `json:"price_cents"`
}

// opened is eventOpened at schema version 2.
type opened struct {
	TallyID string `json:"tally_id"`
	Owner   string `json:"owner"`
	Lines   []line `json:"lines"`
	Total   int64  `json:"total"`
}

// openedV1 is eventOpened as schema version 1 stored it: the lines under "items", no total.
type openedV1 struct {
	TallyID string `json:"tally_id"`
	Owner   string `json:"owner"`
	Items   []line `json:"items"`
}

// linesSet is eventLinesSet.
type linesSet struct {
	Lines  []line `json:"lines"`
	Total  int64  `json:"total"`
	Reason string `json:"reason"`
}

// checked is eventChecked.
type checked struct{}

func (opened) EventType() string   { return eventOpened }
func (linesSet) EventType() string { return eventLinesSet }
func (checked) EventType() string  { return eventChecked }

// total sums the lines' quantity × price.
func total(ls []line) int64 {
	var sum int64
	for _, l := range ls {
		sum += int64(l.Quantity) * l.PriceCents
	}
	return sum
}

// tally is the aggregate: it exists to give envelopes their identity and to replay what the
// store loads.
type tally struct {
	es.Root
	opened bool
	total  int64
	checks int
}

func newTally(id string) *tally { return &tally{Root: es.NewRoot(id)} }

// AggregateType names the suite's aggregate kind.
func (a *tally) AggregateType() string { return tallyType }

// Apply changes the tally by one event.
func (a *tally) Apply(e es.Event, _ time.Time) error {
	if _, first := e.(opened); first == a.opened {
		return fmt.Errorf("tally %s (opened: %t): unexpected %s", a.AggregateID(), a.opened, e.EventType())
	}
	switch ev := e.(type) {
	case opened:
		a.opened, a.total = true, ev.Total
	case linesSet:
		a.total = ev.Total
	case checked:
		a.checks++
	default:
		return fmt.Errorf("tally %s: unexpected event %T", a.AggregateID(), e)
	}
	return nil
}

// newRegistry returns the registry of the suite's event types: what the store under test
// encodes, decodes and upcasts payloads with.
func newRegistry() *es.Registry {
	r := es.NewRegistry()
	register[opened](r, eventOpened, openedSchemaVersion)
	register[linesSet](r, eventLinesSet, 1)
	// eventChecked's payload is empty (zero bytes, not "{}"), as a domain event without fields
	// may be: the store must keep it apart from a payload not encoded yet (nil).
	r.Register(eventChecked, es.EventCodec{
		AggregateType: tallyType,
		SchemaVersion: 1,
		Encode:        func(es.Event) ([]byte, error) { return []byte{}, nil },
		Decode: func(b []byte) (es.Event, error) {
			if len(b) != 0 {
				return nil, fmt.Errorf("%s: payload of %d bytes, want none", eventChecked, len(b))
			}
			return checked{}, nil
		},
	})
	r.RegisterUpcaster(eventOpened, 1, upcastOpenedV1)
	return r
}

// register adds event type E, encoded as JSON; decoding refuses unknown fields, so a payload of
// an older schema version that was not upcast fails instead of loading with zero values.
func register[E es.Event](r *es.Registry, eventType string, version int32) {
	r.Register(eventType, es.EventCodec{
		AggregateType: tallyType,
		SchemaVersion: version,
		Encode: func(e es.Event) ([]byte, error) {
			ev, ok := e.(E)
			if !ok {
				var want E
				return nil, fmt.Errorf("event %s is a %T, want %T", e.EventType(), e, want)
			}
			return json.Marshal(ev)
		},
		Decode: func(b []byte) (es.Event, error) {
			var ev E
			if err := strictUnmarshal(b, &ev); err != nil {
				return nil, err
			}
			return ev, nil
		},
	})
}

// upcastOpenedV1 turns a version 1 eventOpened payload into version 2: the items become the
// lines and the total is computed from them.
func upcastOpenedV1(payload []byte) ([]byte, error) {
	var v1 openedV1
	if err := strictUnmarshal(payload, &v1); err != nil {
		return nil, fmt.Errorf("decode %s v1: %w", eventOpened, err)
	}
	return json.Marshal(opened{TallyID: v1.TallyID, Owner: v1.Owner, Lines: v1.Items, Total: total(v1.Items)})
}

func strictUnmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(v)
}
