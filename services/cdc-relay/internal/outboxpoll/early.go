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
// and the cursor reads it again, the row is not submitted a second time: it counts for the
// checkpoint once its early submission is settled, now or later. (Submitting it again while the
// first was still open dead-lettered an undecodable row twice.) An early submission is never
// lost while its cursor runs: the pipeline settles every change of its term, and a cursor lives
// for one term. Publishing a row early is safe because outbox rows exist only for committed events
// and the pipeline publishes each aggregate in sequence order, filling gaps from event_store;
// the position and checkpoint rules are those of the horizon alone.

// earlyRow is a row submitted ahead of the horizon.
type earlyRow struct {
	settled bool   // the pipeline is done with it (guarded by cursor.mu)
	then    func() // called once it is settled, when the cursor reached it before (guarded by cursor.mu)
}

// change builds the pipeline's change of an outbox row.
func change(cursor string, r *cql.OutboxRow, onDone func(relay.Outcome)) *relay.Change {
	return &relay.Change{
		Cursor: cursor, AggregateID: r.AggregateID, AggregateType: r.AggregateType, Sequence: r.Sequence,
		EventID: r.EventID, Topic: r.Topic, Envelope: r.Envelope, CommittedAt: r.ID.Time(), RowID: r.ID,
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
	err := sink.Submit(ctx, change(c.name, r, func(relay.Outcome) {
		c.mu.Lock()
		e.settled = true
		then := e.then
		c.mu.Unlock()
		if then != nil {
			then()
		}
	}))
	if err != nil {
		c.mu.Lock()
		delete(c.early, r.ID) // not submitted: the cursor submits it when it reaches it
		c.mu.Unlock()
	}
	return err
}

// reachedEarly is called when the cursor reaches a row; done settles the row for the
// checkpoint. It reports whether the row was submitted early, in which case done is called when
// that submission is settled (at once if it already is); the cursor forgets the row.
func (c *cursor) reachedEarly(id gocql.UUID, done func()) bool {
	if c.early == nil {
		return false
	}
	c.mu.Lock()
	e, ok := c.early[id]
	delete(c.early, id)
	settled := ok && e.settled
	if ok && !settled {
		e.then = done
	}
	c.mu.Unlock()
	if settled {
		done()
	}
	return ok
}
