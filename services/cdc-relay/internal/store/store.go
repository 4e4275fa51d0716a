// Package store holds the relay's own CQL state: per-aggregate publish progress, reader
// checkpoints and dead letters (gaps are filled through pkg/cql's EventStore.LoadRaw).
// The tables are created by pkg/cql's migrations (0002_relay).
package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/es"
)

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
		return 0, fmt.Errorf("load publish progress of %s: %w", aggregateID, cql.Unavailable(err))
	}
	return seq, nil
}

// progressTimestampBase is added to a sequence to get the write timestamp of its progress row:
// 2^53 µs (year 2255) is above every wall-clock timestamp, so rows written by a release that
// wrote without USING TIMESTAMP lose against the first write of this one.
const progressTimestampBase = 1 << 53

// Save records seq as the last sequence published for the aggregate. The progress only moves
// forward: the write timestamp grows with seq, so a late write of a lower sequence (a relay that
// lost its lease and finishes a commit afterwards, or two lanes racing) loses against the higher
// one however the writes land, without a read or a lightweight transaction.
func (p *Progress) Save(ctx context.Context, aggregateID string, seq int64) error {
	id, err := gocql.ParseUUID(aggregateID)
	if err != nil {
		return fmt.Errorf("publish progress of %q: %w", aggregateID, es.Invalid("aggregate_id", "must be a UUID"))
	}
	if seq < 1 || seq > math.MaxInt64-progressTimestampBase {
		return fmt.Errorf("publish progress of %s: %w", aggregateID, es.Invalid("sequence", fmt.Sprintf("must be from 1 to %d, got %d", int64(math.MaxInt64-progressTimestampBase), seq)))
	}
	if err := p.s.Query(`INSERT INTO publish_progress (aggregate_id, sequence, updated_at) VALUES (?, ?, ?) USING TIMESTAMP ?`,
		id, seq, time.Now().UTC(), progressTimestampBase+seq).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("save publish progress of %s at %d: %w", aggregateID, seq, cql.Unavailable(err))
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
		return Checkpoint{}, false, fmt.Errorf("load checkpoint %s/%d: %w", name, shard, cql.Unavailable(err))
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
		return fmt.Errorf("save checkpoint %s/%d: %w", name, shard, cql.Unavailable(err))
	}
	return nil
}

// Ping runs a trivial query to check that the store answers.
func Ping(ctx context.Context, s *gocql.Session) error {
	var v string
	if err := s.Query(`SELECT release_version FROM system.local`).WithContext(ctx).Consistency(gocql.One).Scan(&v); err != nil {
		return fmt.Errorf("cql ping: %w", cql.Unavailable(err))
	}
	return nil
}
