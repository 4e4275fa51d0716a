package outboxpoll

import (
	"context"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/relay"
)

// Reading ahead of the horizon.
//
// The fast cursor's horizon trails the clock by the safety window (250 ms) so that its position,
// and the checkpoint made of it, never pass a row that becomes visible a little after its id.
// That window used to be the floor of command → topic latency. The same query now also returns
// the rows above the horizon, up to now: each is submitted at once, once ("early"), without
// moving the position, so it is published as soon as it is visible. When the horizon reaches it
// and the cursor reads it again, a row the pipeline has settled meanwhile is only counted for
// the checkpoint; any other (its early submission still open, or lost with a term) is submitted
// as before. Publishing a row early is safe because outbox rows exist only for committed events
// and the pipeline publishes each aggregate in sequence order, filling gaps from event_store;
// the position and checkpoint rules are those of the horizon alone.

// earlyRow is a row submitted ahead of the horizon.
type earlyRow struct {
	settled bool // the pipeline is done with it (guarded by cursor.mu)
}

// change builds the pipeline's change of an outbox row.
func change(cursor string, r *cql.OutboxRow, onDone func(relay.Outcome)) *relay.Change {
	return &relay.Change{
		Cursor: cursor, AggregateID: r.AggregateID, AggregateType: r.AggregateType, Sequence: r.Sequence,
		EventID: r.EventID, Topic: r.Topic, Envelope: r.Envelope, CommittedAt: r.ID.Time(),
		OnDone: onDone,
	}
}

// readAhead submits a row above the horizon unless it was already.
func (c *cursor) readAhead(ctx context.Context, sink relay.Sink, r *cql.OutboxRow) error {
	c.mu.Lock()
	if _, seen := c.early[r.ID]; seen {
		c.mu.Unlock()
		return nil
	}
	e := &earlyRow{}
	c.early[r.ID] = e
	c.mu.Unlock()
	return sink.Submit(ctx, change(c.name, r, func(relay.Outcome) {
		c.mu.Lock()
		e.settled = true
		c.mu.Unlock()
	}))
}

// settledEarly reports whether the row, now reached by the cursor, was submitted early and
// settled; either way the cursor forgets it.
func (c *cursor) settledEarly(id gocql.UUID) bool {
	if c.early == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.early[id]
	delete(c.early, id)
	return ok && e.settled
}
