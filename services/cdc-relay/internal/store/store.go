// Package store holds the relay's own CQL state: per-aggregate publish progress, reader
// checkpoints, dead letters, and a raw (undecoded) reader of event_store used to fill gaps.
// The tables are created by pkg/cql's migrations (0002_relay).
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/es"
)

// unavailable marks infrastructure errors so that callers can tell them from bad data.
func unavailable(err error) error {
	if err == nil || errors.Is(err, es.ErrUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %w", es.ErrUnavailable, err)
}

// Progress reads and writes publish_progress: per aggregate, the last sequence published.
type Progress struct{ s *gocql.Session }

// NewProgress returns the progress store on the session's keyspace.
func NewProgress(s *gocql.Session) *Progress { return &Progress{s: s} }

// Load returns the last sequence published for the aggregate (0 when none).
func (p *Progress) Load(ctx context.Context, aggregateID string) (int64, error) {
	id, err := gocql.ParseUUID(aggregateID)
	if err != nil {
		return 0, fmt.Errorf("publish progress of %q: %w", aggregateID, es.Invalid("aggregate_id", "must be a UUID"))
	}
	var seq int64
	err = p.s.Query(`SELECT sequence FROM publish_progress WHERE aggregate_id = ?`, id).WithContext(ctx).Scan(&seq)
	if errors.Is(err, gocql.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("load publish progress of %s: %w", aggregateID, unavailable(err))
	}
	return seq, nil
}

// Save records seq as the last sequence published for the aggregate.
func (p *Progress) Save(ctx context.Context, aggregateID string, seq int64) error {
	id, err := gocql.ParseUUID(aggregateID)
	if err != nil {
		return fmt.Errorf("publish progress of %q: %w", aggregateID, es.Invalid("aggregate_id", "must be a UUID"))
	}
	if err := p.s.Query(`INSERT INTO publish_progress (aggregate_id, sequence, updated_at) VALUES (?, ?, ?)`,
		id, seq, time.Now().UTC()).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("save publish progress of %s at %d: %w", aggregateID, seq, unavailable(err))
	}
	return nil
}

// Checkpoint is a reader's durable position in one outbox shard.
type Checkpoint struct {
	// Bucket is the minute bucket being read.
	Bucket int64
	// LastID is the id of the last row handled in that bucket (zero: none yet).
	LastID gocql.UUID
	// UpdatedAt is when the checkpoint was written.
	UpdatedAt time.Time
}

// Checkpoints reads and writes relay_checkpoints.
type Checkpoints struct{ s *gocql.Session }

// NewCheckpoints returns the checkpoint store on the session's keyspace.
func NewCheckpoints(s *gocql.Session) *Checkpoints { return &Checkpoints{s: s} }

// Load returns the checkpoint of reader name in shard, and false when there is none.
func (c *Checkpoints) Load(ctx context.Context, name string, shard int) (Checkpoint, bool, error) {
	var cp Checkpoint
	var last *gocql.UUID
	err := c.s.Query(`SELECT bucket, last_id, updated_at FROM relay_checkpoints WHERE name = ? AND shard = ?`, name, shard).
		WithContext(ctx).Scan(&cp.Bucket, &last, &cp.UpdatedAt)
	if errors.Is(err, gocql.ErrNotFound) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("load checkpoint %s/%d: %w", name, shard, unavailable(err))
	}
	if last != nil {
		cp.LastID = *last
	}
	return cp, true, nil
}

// Save writes the checkpoint of reader name in shard.
func (c *Checkpoints) Save(ctx context.Context, name string, shard int, cp Checkpoint) error {
	var last any
	if cp.LastID != (gocql.UUID{}) {
		last = cp.LastID
	}
	if err := c.s.Query(`INSERT INTO relay_checkpoints (name, shard, bucket, last_id, updated_at) VALUES (?, ?, ?, ?, ?)`,
		name, shard, cp.Bucket, last, time.Now().UTC()).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("save checkpoint %s/%d: %w", name, shard, unavailable(err))
	}
	return nil
}

// Events reads event_store rows as stored, without decoding the payloads: the relay forwards
// bytes and never needs to understand them, so an event type it does not know cannot block it.
type Events struct{ s *gocql.Session }

// NewEvents returns the raw event reader on the session's keyspace.
func NewEvents(s *gocql.Session) *Events { return &Events{s: s} }

// LoadRaw returns the aggregate's events with from ≤ sequence ≤ to in sequence order, payloads
// as stored.
func (e *Events) LoadRaw(ctx context.Context, aggregateID string, from, to int64) ([]es.Envelope, error) {
	aggID, err := gocql.ParseUUID(aggregateID)
	if err != nil {
		return nil, fmt.Errorf("load events of %q: %w", aggregateID, es.Invalid("aggregate_id", "must be a UUID"))
	}
	iter := e.s.Query(`SELECT aggregate_type, sequence, event_id, event_type, schema_version, payload, causation_id,
 correlation_id, user_id, occurred_at, metadata, traceparent, tracestate FROM event_store
 WHERE aggregate_id = ? AND sequence >= ? AND sequence <= ?`, aggID, from, to).WithContext(ctx).PageSize(500).Iter()
	var out []es.Envelope
	for {
		var env es.Envelope
		var evID gocql.UUID
		if !iter.Scan(&env.AggregateType, &env.Sequence, &evID, &env.EventType, &env.SchemaVersion, &env.Payload,
			&env.CausationID, &env.CorrelationID, &env.UserID, &env.OccurredAt, &env.Metadata, &env.TraceParent, &env.TraceState) {
			break
		}
		env.AggregateID, env.EventID, env.OccurredAt = aggregateID, evID.String(), env.OccurredAt.UTC()
		out = append(out, env)
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("load events %d..%d of %s: %w", from, to, aggregateID, unavailable(err))
	}
	return out, nil
}

// Ping runs a trivial query to check that the store answers.
func Ping(ctx context.Context, s *gocql.Session) error {
	var v string
	if err := s.Query(`SELECT release_version FROM system.local`).WithContext(ctx).Consistency(gocql.One).Scan(&v); err != nil {
		return fmt.Errorf("cql ping: %w", unavailable(err))
	}
	return nil
}
