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
	"golang.org/x/sync/errgroup"

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

// How many aggregates one progress query or batch covers: an IN list of that many partitions
// (ScyllaDB refuses more than 100, max_partition_key_restrictions_per_query), or an unlogged
// batch over that many partitions (Cassandra warns above 10,
// unlogged_batch_across_partitions_warn_threshold).
const (
	progressLoadChunk = 100
	progressSaveChunk = 10
	progressParallel  = 8 // chunks in flight at once
)

// Load returns the last sequence published of the aggregates of ids (0 when none), a query per
// progressLoadChunk aggregates. While publish_progress holds rows written by an earlier
// release, the greater of both tables. The result has an entry for every id that was read,
// also on an error (then the ids of the queries that failed have none).
func (p *Progress) Load(ctx context.Context, ids []string) (map[string]int64, error) {
	uids, names, err := parseIDs(ids)
	if err != nil {
		return nil, err
	}
	legacy, err := p.readsLegacy(ctx)
	if err != nil {
		return nil, fmt.Errorf("load publish progress: %w", err)
	}
	out := make(map[string]int64, len(ids))
	var mu sync.Mutex
	err = inChunks(ctx, uids, progressLoadChunk, func(ctx context.Context, chunk []gocql.UUID) error {
		found, err := p.scan(ctx, `SELECT aggregate_id, sequence FROM published_sequences WHERE aggregate_id IN ? PER PARTITION LIMIT 1`, chunk)
		if err != nil {
			return fmt.Errorf("load publish progress: %w", err)
		}
		if legacy {
			old, err := p.scan(ctx, `SELECT aggregate_id, sequence FROM publish_progress WHERE aggregate_id IN ?`, chunk)
			if err != nil {
				return fmt.Errorf("load publish progress (written by an earlier release): %w", err)
			}
			for id, seq := range old {
				found[id] = max(found[id], seq)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, u := range chunk {
			for _, name := range names[u] {
				out[name] = found[u]
			}
		}
		return nil
	})
	return out, err
}

// parseIDs parses aggregate ids as UUIDs, each once; names maps each back to the ids as given
// (one UUID may be spelt several ways).
func parseIDs(ids []string) (uids []gocql.UUID, names map[gocql.UUID][]string, err error) {
	names = make(map[gocql.UUID][]string, len(ids))
	for _, id := range ids {
		u, err := gocql.ParseUUID(id)
		if err != nil {
			return nil, nil, fmt.Errorf("publish progress of %q: %w", id, es.Invalid("aggregate_id", "must be a UUID"))
		}
		if _, seen := names[u]; !seen {
			uids = append(uids, u)
		}
		names[u] = append(names[u], id)
	}
	return uids, names, nil
}

// inChunks runs fn on consecutive chunks of at most n ids, progressParallel at a time (a chunk
// that fails does not stop the others), and returns the first error.
func inChunks(ctx context.Context, ids []gocql.UUID, n int, fn func(context.Context, []gocql.UUID) error) error {
	var g errgroup.Group
	g.SetLimit(progressParallel)
	for i := 0; i < len(ids); i += n {
		chunk := ids[i:min(i+n, len(ids))]
		g.Go(func() error { return fn(ctx, chunk) })
	}
	return g.Wait()
}

// scan reads (aggregate id, sequence) rows.
func (p *Progress) scan(ctx context.Context, stmt string, ids []gocql.UUID) (map[gocql.UUID]int64, error) {
	iter := p.s.Query(stmt, ids).WithContext(ctx).Iter()
	out := map[gocql.UUID]int64{}
	var id gocql.UUID
	var seq int64
	for iter.Scan(&id, &seq) {
		out[id] = max(out[id], seq) // one row per partition is expected; the greatest counts
	}
	if err := iter.Close(); err != nil {
		return nil, cql.UnavailableIn(ctx, err)
	}
	return out, nil
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

// Save records each aggregate's sequence of seqs as the last one published: per aggregate it
// inserts the sequence and deletes the rows below it, in one unlogged batch per
// progressSaveChunk aggregates (each aggregate's two statements in one partition, so atomic and
// isolated for it). The progress only moves forward: a late save of a lower sequence (a relay
// that lost its lease and finishes a commit afterwards, or two lanes racing) inserts a row
// below the greatest one and deletes only rows below its own, however the writes land and
// whatever their write timestamps, without a read or a lightweight transaction. On an error
// some aggregates may be saved and others not: saving again is harmless.
func (p *Progress) Save(ctx context.Context, seqs map[string]int64) error {
	ids := make([]string, 0, len(seqs))
	for id, seq := range seqs {
		if seq < 1 {
			return fmt.Errorf("publish progress of %s: %w", id, es.Invalid("sequence", fmt.Sprintf("must be at least 1, got %d", seq)))
		}
		ids = append(ids, id)
	}
	uids, names, err := parseIDs(ids)
	if err != nil {
		return err
	}
	return inChunks(ctx, uids, progressSaveChunk, func(ctx context.Context, chunk []gocql.UUID) error {
		now := time.Now().UTC()
		b := p.s.Batch(gocql.UnloggedBatch).WithContext(ctx)
		for _, id := range chunk {
			var seq int64
			for _, name := range names[id] {
				seq = max(seq, seqs[name])
			}
			b.Query(`INSERT INTO published_sequences (aggregate_id, sequence, published_at) VALUES (?, ?, ?)`, id, seq, now)
			b.Query(`DELETE FROM published_sequences WHERE aggregate_id = ? AND sequence < ?`, id, seq)
		}
		if err := p.s.ExecuteBatch(b); err != nil {
			return fmt.Errorf("save publish progress of %d aggregates: %w", len(chunk), cql.UnavailableIn(ctx, err))
		}
		return nil
	})
}
