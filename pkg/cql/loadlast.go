package cql

import (
	"context"
	"fmt"
	"slices"

	"github.com/ordersys/ordersys/pkg/es"
)

// LoadLast returns the stream head and the aggregate's last n events (every event when it has
// n or fewer), in order, decoded and upcast, each with the fields es.Folded keeps. The head and
// the rows, newest first, are read side by side: one round trip, so that a load reading the
// newest snapshot beside it has the events after a snapshot at most n events old without a
// second one.
//
// As in Load, the rows are cut at the head's version; when an append raced the read, so that the
// rows left are not the head's last n, those are read again after (and if they are still
// missing the load fails as Unavailable).
func (st *EventStore) LoadLast(ctx context.Context, aggregateID string, n int) ([]es.Envelope, es.StreamHead, error) {
	aggID, err := parseUUID("aggregate_id", aggregateID)
	if err != nil {
		return nil, es.StreamHead{}, err
	}
	n = max(n, 1)
	heads := make(chan streamHead, 1)
	go func() {
		st.opts.Hook(StepLoadHead)
		heads <- st.head(ctx, aggregateID, aggID)
	}()
	iter := st.s.Query(`SELECT `+foldColumns+` FROM event_store WHERE aggregate_id = ? ORDER BY sequence DESC LIMIT ?`, aggID, n).
		WithContext(ctx).PageSize(n).Iter()
	var (
		rows []es.Envelope
		env  es.Envelope
	)
	for iter.Scan(&env.Sequence, &env.EventType, &env.SchemaVersion, &env.Payload, &env.OccurredAt) {
		rows = append(rows, env)
		env = es.Envelope{}
	}
	readErr := iter.Close()
	h := <-heads
	switch {
	case h.err != nil:
		return nil, es.StreamHead{}, h.err
	case readErr != nil:
		return nil, es.StreamHead{}, fmt.Errorf("load %s: %w", aggregateID, UnavailableIn(ctx, readErr))
	case !h.found:
		return nil, h.StreamHead, nil // the stream was created after its head was read
	}
	slices.Reverse(rows)
	if h.Version > 0 { // a stream without a version (none that an append wrote) is read as it is
		lo := max(1, h.Version-int64(n)+1)
		rows = slices.DeleteFunc(rows, func(e es.Envelope) bool { return e.Sequence < lo || e.Sequence > h.Version })
		if want := h.Version - lo + 1; int64(len(rows)) != want {
			// An append raced the read: the rows came before one the head counts, or after one
			// it does not (the rows it counts are then fewer than n). Read them again, in order.
			more, err := st.LoadRaw(ctx, aggregateID, lo, h.Version)
			if err != nil {
				return nil, es.StreamHead{}, err
			}
			if int64(len(more)) != want {
				return nil, es.StreamHead{}, fmt.Errorf("load %s: %w: rows %d to %d of version %d not readable", aggregateID,
					es.ErrUnavailable, lo, h.Version, h.Version)
			}
			rows = rows[:0]
			for _, e := range more {
				rows = append(rows, es.Folded(e))
			}
		}
	}
	for i := range rows {
		rows[i].AggregateID, rows[i].AggregateType, rows[i].OccurredAt = aggregateID, h.aggregateType, rows[i].OccurredAt.UTC()
		if err := st.reg.DecodeEnvelopeContext(ctx, &rows[i]); err != nil {
			return nil, es.StreamHead{}, fmt.Errorf("load %s: %w", aggregateID, err)
		}
	}
	return rows, h.StreamHead, nil
}
