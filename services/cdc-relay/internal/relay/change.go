// Package relay is the heart of the cdc-relay: it takes outbox changes from a Source, puts each
// aggregate's events in sequence order (dropping what was already published and filling gaps
// from event_store), publishes them to Kafka with retries, a circuit breaker and a dead-letter
// path, and tells the source which changes are done so it can advance its checkpoint.
package relay

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/gocql/gocql"
)

// Outcome says how a change was settled.
type Outcome int

// The outcomes of a change.
const (
	// Published: the event was acknowledged by the broker (now or earlier in this term).
	Published Outcome = iota
	// Duplicate: the event had already been published; the change was dropped.
	Duplicate
	// DeadLettered: the change can never be published as it is; it went to the dead-letter topic
	// and table.
	DeadLettered
	// Divergent: the row's event is not the one published at its sequence (event_store holds
	// another event there, or the published one differs): counted, logged, never published.
	Divergent
)

func (o Outcome) String() string {
	switch o {
	case Published:
		return "published"
	case Duplicate:
		return "duplicate"
	case DeadLettered:
		return "dead-lettered"
	case Divergent:
		return "divergent"
	}
	return "unknown"
}

// Change is one outbox row handed to the pipeline by a source.
type Change struct {
	// Cursor names the reader that produced the change (for metrics and logs).
	Cursor string
	// AggregateID, AggregateType and Sequence place the event in its stream, as the row says.
	AggregateID, AggregateType string
	Sequence                   int64
	// EventID is the event's id as the row says.
	EventID string
	// Topic is the topic the row names (empty: derived from the aggregate type).
	Topic string
	// Envelope is the protobuf orders.v1.EventEnvelope.
	Envelope []byte
	// CommittedAt is when the row was written (the time of its timeuuid or CDC time).
	CommittedAt time.Time
	// RowID is the outbox row's id (zero when the source does not know it). A dead letter of
	// the row is recorded under it, once: a row read again (the rescan cursor, a restart) is
	// not dead-lettered a second time.
	RowID gocql.UUID

	// OnDone is called once when the change is settled (from a pipeline goroutine).
	OnDone func(Outcome)

	settled atomic.Bool
}

// settle calls OnDone once.
func (c *Change) settle(o Outcome) {
	if c.settled.CompareAndSwap(false, true) && c.OnDone != nil {
		c.OnDone(o)
	}
}

// Sink accepts changes; Submit blocks while too many changes are in flight.
type Sink interface {
	Submit(ctx context.Context, c *Change) error
}

// Source reads outbox changes and hands them to a sink until ctx ends. It advances its durable
// position only past changes that are settled. A Source is started afresh for each leadership
// term.
type Source interface {
	// Name identifies the source ("outbox-poll", "scylla-cdc").
	Name() string
	// Run reads until ctx ends; it returns ctx's error then, or another error when it cannot go on
	// (the caller restarts it after a pause).
	Run(ctx context.Context, sink Sink) error
}
