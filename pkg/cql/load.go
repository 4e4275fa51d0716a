package cql

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/es"
)

// The columns of a stream's rows: foldColumns are those rebuilding an aggregate's state needs
// (es.Folded), wholeColumns every field of the envelope. A replay reads only the first: on a
// long stream the others (ids, metadata, trace context) are wider than the events themselves.
// The static head (aggregate_type, version, commands) is read by a query of its own: beside
// the rows the driver would carry it with every one of them, and the commands map alone holds
// up to a thousand ids.
const (
	foldColumns  = `sequence, event_type, schema_version, payload, occurred_at`
	wholeColumns = foldColumns + `, event_id, causation_id, correlation_id, user_id, metadata, traceparent, tracestate`
)

// Head returns the current version and the recorded commands.
func (st *EventStore) Head(ctx context.Context, aggregateID string) (es.StreamHead, error) {
	aggID, err := parseUUID("aggregate_id", aggregateID)
	if err != nil {
		return es.StreamHead{}, err
	}
	h := st.head(ctx, aggregateID, aggID)
	return h.StreamHead, h.err
}

// streamHead is a stream's static head as read, with the aggregate's type; found is false when
// the stream had no row yet.
type streamHead struct {
	es.StreamHead
	aggregateType string
	found         bool
	err           error
}

func (st *EventStore) head(ctx context.Context, aggregateID string, aggID gocql.UUID) streamHead {
	var (
		h        streamHead
		version  int64
		commands map[string]string
	)
	err := st.s.Query(`SELECT aggregate_type, version, commands FROM event_store WHERE aggregate_id = ? LIMIT 1`, aggID).
		WithContext(ctx).Scan(&h.aggregateType, &version, &commands)
	switch {
	case errors.Is(err, gocql.ErrNotFound):
		h.StreamHead = es.StreamHead{Commands: map[string]es.CommandRecord{}}
	case err != nil:
		h.err = fmt.Errorf("head %s: %w", aggregateID, UnavailableIn(ctx, err))
	default:
		h.StreamHead, h.found = headFrom(version, commands), true
	}
	return h
}

// scan calls fn for each stored row of the aggregate with start ≤ sequence (and ≤ to when
// to > 0), in order, payloads as stored (not decoded): every field of the envelope when whole,
// else only those es.Folded keeps. It returns, for a fold, the stream head; a whole read
// (LoadRaw: a range the caller knows) reads no head.
//
// A fold's head is read beside the first page of rows, and the rows are cut at its version: the
// rows and the head describe the same state. An append that lands between the two reads is cut
// off when the head came first (a head that found no stream cuts every row); when the rows came
// first, the rows the head counts beyond them are read once more, and if they are still missing
// the load fails as Unavailable (the head and its rows are written in one batch of one
// partition, so at QUORUM a row the head counts is there to read).
func (st *EventStore) scan(ctx context.Context, aggregateID string, start, to int64, whole bool, fn func(es.Envelope) error) (es.StreamHead, error) {
	aggID, err := parseUUID("aggregate_id", aggregateID)
	if err != nil {
		return es.StreamHead{}, err
	}
	var (
		env   es.Envelope
		evID  gocql.UUID
		heads chan streamHead
	)
	cols, row := foldColumns, []any{&env.Sequence, &env.EventType, &env.SchemaVersion, &env.Payload, &env.OccurredAt}
	if whole {
		// The aggregate's type is a short static column: it comes with the rows.
		cols = `aggregate_type, ` + wholeColumns
		row = append([]any{&env.AggregateType}, append(row, &evID, &env.CausationID, &env.CorrelationID, &env.UserID,
			&env.Metadata, &env.TraceParent, &env.TraceState)...)
	} else {
		heads = make(chan streamHead, 1)
		go func() {
			st.opts.Hook(StepLoadHead)
			heads <- st.head(ctx, aggregateID, aggID)
		}()
	}
	bound := int64(math.MaxInt64)
	if to > 0 {
		bound = to
	}
	// Prefetch(1): the next page is asked for as soon as the first row of this one is taken, so
	// a long replay decodes and applies a page while the next one is on its way.
	read := func(from, to int64) *gocql.Iter {
		return st.s.Query(`SELECT `+cols+` FROM event_store WHERE aggregate_id = ? AND sequence >= ? AND sequence <= ?`, aggID, from, to).
			WithContext(ctx).PageSize(st.opts.PageSize).Prefetch(1).Iter()
	}
	iter := read(start, bound)
	var h streamHead
	if !whole {
		if h = <-heads; h.err != nil {
			_ = iter.Close()
			return es.StreamHead{}, h.err
		}
		switch {
		case !h.found:
			bound = 0 // the stream was created after its head was read
		case h.Version > 0 && h.Version < bound: // a stream without a version (none that an append wrote) is read to its end
			bound = h.Version
		}
	}
	next := start
	each := func(iter *gocql.Iter) error {
		for {
			env = es.Envelope{}
			if !iter.Scan(row...) {
				break
			}
			if env.Sequence > bound {
				break // appended after the head was read
			}
			next = env.Sequence + 1
			env.AggregateID, env.OccurredAt = aggregateID, env.OccurredAt.UTC()
			if whole {
				env.EventID = evID.String()
			} else {
				env.AggregateType = h.aggregateType
			}
			if err := fn(env); err != nil {
				_ = iter.Close()
				return err
			}
		}
		if err := iter.Close(); err != nil {
			return fmt.Errorf("load %s: %w", aggregateID, UnavailableIn(ctx, err))
		}
		return nil
	}
	if err := each(iter); err != nil {
		return h.StreamHead, err
	}
	if !whole && h.Version > 0 && next <= bound {
		// The rows were read before an append the head counts.
		if err := each(read(next, bound)); err != nil {
			return h.StreamHead, err
		}
		if next <= bound {
			return h.StreamHead, fmt.Errorf("load %s: %w: rows %d to %d of version %d not readable", aggregateID,
				es.ErrUnavailable, next, bound, h.Version)
		}
	}
	return h.StreamHead, nil
}

// Load streams the events with sequence ≥ from, page by page, decoded and upcast, each with
// only the fields that rebuilding state reads (es.Folded).
func (st *EventStore) Load(ctx context.Context, aggregateID string, from int64, fn func(es.Envelope) error) (es.StreamHead, error) {
	if from < 1 {
		from = 1
	}
	return st.scan(ctx, aggregateID, from, 0, false, func(env es.Envelope) error {
		if err := st.reg.DecodeEnvelopeContext(ctx, &env); err != nil {
			return fmt.Errorf("load %s: %w", aggregateID, err)
		}
		return fn(env)
	})
}

// LoadRaw returns the events with from ≤ sequence ≤ to with their payloads as stored, not
// decoded: for forwarding bytes (the relay), where an event type this build does not know must
// not block anything.
func (st *EventStore) LoadRaw(ctx context.Context, aggregateID string, from, to int64) ([]es.Envelope, error) {
	if from < 1 {
		from = 1
	}
	if to < from {
		return nil, nil
	}
	var out []es.Envelope
	_, err := st.scan(ctx, aggregateID, from, to, true, func(env es.Envelope) error {
		out = append(out, env)
		return nil
	})
	return out, err
}

func headFrom(version int64, commands map[string]string) es.StreamHead {
	h := es.StreamHead{Version: version, Commands: map[string]es.CommandRecord{}}
	for k, v := range commands {
		// An entry this release cannot read (a later release's format) still marks the id as
		// taken: its empty fingerprint matches no command, so a repeat fails as a reused id
		// instead of being decided again (an append under the id would not apply anyway).
		rec, _ := parseCommandValue(v)
		h.Commands[k] = rec
	}
	return h
}

// LoadRange returns the decoded events with from ≤ sequence ≤ to, whole.
func (st *EventStore) LoadRange(ctx context.Context, aggregateID string, from, to int64) ([]es.Envelope, error) {
	out, err := st.LoadRaw(ctx, aggregateID, from, to)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if err := st.reg.DecodeEnvelopeContext(ctx, &out[i]); err != nil {
			return nil, fmt.Errorf("load %s: %w", aggregateID, err)
		}
	}
	return out, nil
}
