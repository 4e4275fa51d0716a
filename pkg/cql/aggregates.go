package cql

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gocql/gocql"
)

// MinToken is the smallest Murmur3 token: Aggregates with after = MinToken starts at the first
// aggregate of the ring.
const MinToken int64 = math.MinInt64

// saveWalkTimeout bounds saving a finished page's position after the walk's context ended.
const saveWalkTimeout = 10 * time.Second

// WalkDone is the position a walk saves once it has gone round the whole ring.
const WalkDone int64 = math.MaxInt64

// Aggregates lists up to limit aggregate ids of the event store whose partition token is
// greater than after (MinToken: from the start), in token order, with the token of the last
// one. It pages over the token ring (SELECT DISTINCT on the partition key, one token range per
// page), so enumerating a large store never needs a full scan in one query and a caller can
// resume from a saved token. An empty page means the end of the ring.
func (st *EventStore) Aggregates(ctx context.Context, after int64, limit int) (ids []string, last int64, err error) {
	return partitions(ctx, st.s, "event_store", "aggregate_id", after, limit)
}

// TokenFraction says how far token is along the ring, from 0 (MinToken) to 1: with tokens
// spread evenly (Murmur3), the fraction of aggregates a token-ordered walk has done.
func TokenFraction(token int64) float64 {
	return (float64(token) - float64(MinToken)) / (float64(math.MaxInt64) - float64(MinToken))
}

// WalkPage is one page of WalkAggregates.
type WalkPage struct {
	// IDs are the page's aggregates, in token order.
	IDs []string
	// Last is the token of the page's last aggregate.
	Last int64
	// Fraction is how far along the ring the walk is once this page is done (TokenFraction of
	// Last), and Start where this run of the walk began (above 0 when it resumed): the share of
	// the ring this run walked is Fraction − Start, the basis of an ETA.
	Fraction, Start float64
}

// WalkAggregates calls fn with every aggregate of the event store, a page of up to pageSize at
// a time in token order (Aggregates: no full-table scan). With a checkpoint name, the walk
// starts after the position saved under that name (a row of relay_checkpoints, shard 0, the
// token in bucket) and saves its position after each page fn returned nil for, and WalkDone
// once the ring is done: a walk that stopped or crashed resumes after the last page it
// finished (the aggregates of an unfinished page are walked again), and a finished one does
// nothing. Without a name it starts at MinToken and saves nothing. fn's error ends the walk.
//
// This is the one enumeration of the event store: the relay's re-publication and the
// projector's rebuild from the event store both walk it.
func (st *EventStore) WalkAggregates(ctx context.Context, checkpoint string, pageSize int, fn func(WalkPage) error) error {
	after := MinToken
	if checkpoint != "" {
		pos, ok, err := st.WalkPosition(ctx, checkpoint)
		if err != nil {
			return err
		}
		if ok {
			after = pos
		}
	}
	start := 0.0
	if after != MinToken {
		start = TokenFraction(after)
	}
	for {
		page, last, err := st.Aggregates(ctx, after, pageSize)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			if checkpoint != "" && after != WalkDone {
				return st.SaveWalkPosition(ctx, checkpoint, WalkDone)
			}
			return nil
		}
		if err := fn(WalkPage{IDs: page, Last: last, Fraction: TokenFraction(last), Start: start}); err != nil {
			return err
		}
		if checkpoint != "" {
			// The page is done even when ctx ended meanwhile (fn's last step may have been to
			// report progress to a caller that then stopped): save it anyway.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveWalkTimeout)
			err := st.SaveWalkPosition(sctx, checkpoint, last)
			cancel()
			if err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		after = last
	}
}

// WalkPosition returns the position saved by the walk named checkpoint (the token of the last
// aggregate it finished, WalkDone when it went round the ring), and false when there is none.
func (st *EventStore) WalkPosition(ctx context.Context, checkpoint string) (int64, bool, error) {
	var pos int64
	err := st.s.Query(`SELECT bucket FROM relay_checkpoints WHERE name = ? AND shard = 0`, checkpoint).WithContext(ctx).Scan(&pos)
	if errors.Is(err, gocql.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("load walk position %s: %w", checkpoint, UnavailableIn(ctx, err))
	}
	return pos, true, nil
}

// SaveWalkPosition saves the position of the walk named checkpoint (MinToken: not started).
func (st *EventStore) SaveWalkPosition(ctx context.Context, checkpoint string, pos int64) error {
	if err := st.s.Query(`INSERT INTO relay_checkpoints (name, shard, bucket, updated_at) VALUES (?, 0, ?, ?)`,
		checkpoint, pos, time.Now().UTC()).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("save walk position %s: %w", checkpoint, UnavailableIn(ctx, err))
	}
	return nil
}
