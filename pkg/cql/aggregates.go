package cql

import (
	"context"
	"fmt"
	"math"
)

// MinToken is the smallest Murmur3 token: Aggregates with after = MinToken starts at the first
// aggregate of the ring.
const MinToken int64 = math.MinInt64

// Aggregates lists up to limit aggregate ids of the event store whose partition token is
// greater than after (MinToken: from the start), in token order, with the token of the last
// one. It pages over the token ring (SELECT DISTINCT on the partition key, one token range per
// page), so enumerating a large store never needs a full scan in one query and a caller can
// resume from a saved token. An empty page means the end of the ring.
func (st *EventStore) Aggregates(ctx context.Context, after int64, limit int) (ids []string, last int64, err error) {
	op := ">"
	if after == MinToken {
		op = ">="
	}
	iter := st.s.Query(`SELECT DISTINCT aggregate_id, token(aggregate_id) FROM event_store WHERE token(aggregate_id) `+op+` ? LIMIT ?`,
		after, limit).WithContext(ctx).PageSize(limit).Iter()
	var id string
	var tok int64
	last = after
	for iter.Scan(&id, &tok) {
		ids = append(ids, id)
		last = tok
	}
	if err := iter.Close(); err != nil {
		return nil, after, fmt.Errorf("list aggregates after token %d: %w", after, Unavailable(err))
	}
	return ids, last, nil
}

// TokenFraction says how far token is along the ring, from 0 (MinToken) to 1: with tokens
// spread evenly (Murmur3), the fraction of aggregates a token-ordered walk has done.
func TokenFraction(token int64) float64 {
	return (float64(token) - float64(MinToken)) / (float64(math.MaxInt64) - float64(MinToken))
}
