// Package store holds the relay's own CQL state: per-aggregate publish progress, reader
// checkpoints and dead letters (gaps are filled through pkg/cql's EventStore.LoadRaw).
// The tables are created by pkg/cql's migrations (0002_relay, 0006_published_sequences).
package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/es"
)

// Progress reads and writes published_sequences: per aggregate, the last sequence published
// (the greatest row of its partition).
type Progress struct {
	s *gocql.Session

	mu            sync.Mutex
	legacy        bool      // publish_progress holds rows written by an earlier release
	legacyChecked time.Time // when legacy was last found false (zero: never checked)
}

// legacyRecheck is how long an empty publish_progress is trusted to stay empty: an earlier
// release still running during a rolling upgrade may write its first row later.
const legacyRecheck = time.Minute

// NewProgress returns the progress store on the session's keyspace.
func NewProgress(s *gocql.Session) *Progress { return &Progress{s: s} }

// Load returns the last sequence published for the aggregate (0 when none). While
// publish_progress holds rows written by an earlier release, the greater of both tables.
func (p *Progress) Load(ctx context.Context, aggregateID string) (int64, error) {
	id, err := gocql.ParseUUID(aggregateID)
	if err != nil {
		return 0, fmt.Errorf("publish progress of %q: %w", aggregateID, es.Invalid("aggregate_id", "must be a UUID"))
	}
	seq, err := p.scan(ctx, `SELECT sequence FROM published_sequences WHERE aggregate_id = ? LIMIT 1`, id)
	if err != nil {
		return 0, fmt.Errorf("load publish progress of %s: %w", aggregateID, err)
	}
	legacy, err := p.readsLegacy(ctx)
	if err != nil {
		return 0, fmt.Errorf("load publish progress of %s: %w", aggregateID, err)
	}
	if legacy {
		old, err := p.scan(ctx, `SELECT sequence FROM publish_progress WHERE aggregate_id = ?`, id)
		if err != nil {
			return 0, fmt.Errorf("load publish progress of %s (written by an earlier release): %w", aggregateID, err)
		}
		seq = max(seq, old)
	}
	return seq, nil
}

// scan reads one sequence (0 when there is no row).
func (p *Progress) scan(ctx context.Context, stmt string, id gocql.UUID) (int64, error) {
	var seq int64
	err := p.s.Query(stmt, id).WithContext(ctx).Scan(&seq)
	if errors.Is(err, gocql.ErrNotFound) {
		return 0, nil
	}
	return seq, cql.UnavailableIn(ctx, err)
}

// readsLegacy reports whether publish_progress (the table of releases before
// published_sequences) holds any row, checking again at most once per legacyRecheck while it
// does not.
func (p *Progress) readsLegacy(ctx context.Context) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.legacy || (!p.legacyChecked.IsZero() && time.Since(p.legacyChecked) < legacyRecheck) {
		return p.legacy, nil
	}
	var id gocql.UUID
	err := p.s.Query(`SELECT aggregate_id FROM publish_progress LIMIT 1`).WithContext(ctx).Scan(&id)
	switch {
	case err == nil:
		p.legacy = true
	case errors.Is(err, gocql.ErrNotFound):
		p.legacyChecked = time.Now()
	default:
		return false, cql.UnavailableIn(ctx, err)
	}
	return p.legacy, nil
}

// Save records seq as the last sequence published for the aggregate: it inserts seq and deletes
// the rows below it in one single-partition batch (atomic and isolated). The progress only
// moves forward: a late save of a lower sequence (a relay that lost its lease and finishes a
// commit afterwards, or two lanes racing) inserts a row below the greatest one and deletes only
// rows below its own, however the writes land and whatever their write timestamps, without a
// read or a lightweight transaction.
func (p *Progress) Save(ctx context.Context, aggregateID string, seq int64) error {
	id, err := gocql.ParseUUID(aggregateID)
	if err != nil {
		return fmt.Errorf("publish progress of %q: %w", aggregateID, es.Invalid("aggregate_id", "must be a UUID"))
	}
	if seq < 1 {
		return fmt.Errorf("publish progress of %s: %w", aggregateID, es.Invalid("sequence", fmt.Sprintf("must be at least 1, got %d", seq)))
	}
	b := p.s.Batch(gocql.UnloggedBatch).WithContext(ctx)
	b.Query(`INSERT INTO published_sequences (aggregate_id, sequence, published_at) VALUES (?, ?, ?)`, id, seq, time.Now().UTC())
	b.Query(`DELETE FROM published_sequences WHERE aggregate_id = ? AND sequence < ?`, id, seq)
	if err := p.s.ExecuteBatch(b); err != nil {
		return fmt.Errorf("save publish progress of %s at %d: %w", aggregateID, seq, cql.UnavailableIn(ctx, err))
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
