package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/es"
)

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

// Save writes the checkpoint of reader name in shard. A checkpoint does not move back: its write
// timestamp is the position's time (see checkpointTimestamp), so the late write of an earlier
// position (a relay paused past its lease that saves on waking, after the shard's new owner
// saved a later one) loses however the writes land, without a read or a lightweight
// transaction. Every saved position is true (every row before it that was visible when its
// reader passed was settled; later ones are the rescan cursor's), so keeping the furthest is
// safe. Two positions within one microsecond tie, and the cells then go by value: the checkpoint
// is one of the two (at worst rows read again and dropped as duplicates).
func (c *Checkpoints) Save(ctx context.Context, name string, shard int, cp Checkpoint) error {
	var last any
	if cp.LastID != (gocql.UUID{}) {
		last = cp.LastID
	}
	ts, err := checkpointTimestamp(cp)
	if err != nil {
		return fmt.Errorf("save checkpoint %s/%d: %w", name, shard, err)
	}
	if err := c.s.Query(`INSERT INTO relay_checkpoints (name, shard, bucket, last_id, updated_at) VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?`,
		name, shard, cp.Bucket, last, time.Now().UTC(), ts).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("save checkpoint %s/%d: %w", name, shard, cql.Unavailable(err))
	}
	return nil
}

// checkpointTimestamp returns the write timestamp of a checkpoint: the position's own time in
// µs, the start of its bucket when no id has been read in it yet, else its last id's time kept
// inside the bucket (a row whose id came from a skewed clock may lie outside). Later positions (a
// later bucket, or a later id in the same bucket) get later timestamps, and the timestamps are
// never ahead of the cluster clock by more than the writers' skew: ScyllaDB refuses USING
// TIMESTAMP more than three days ahead (restrict_future_timestamp), and a row written by a
// release that wrote wall-clock timestamps, or a DELETE an operator runs to reset a cursor, is
// replaced or applied as usual once the cursor has passed the time it was written.
func checkpointTimestamp(cp Checkpoint) (int64, error) {
	if cp.Bucket < 0 || cp.Bucket > maxCheckpointBucket {
		return 0, es.Invalid("bucket", fmt.Sprintf("must be from 0 to %d, got %d", int64(maxCheckpointBucket), cp.Bucket))
	}
	start := cql.BucketStart(cp.Bucket).UnixMicro()
	if cp.LastID == (gocql.UUID{}) {
		return start, nil
	}
	const minute = int64(time.Minute / time.Microsecond)
	return min(max(cp.LastID.Time().UnixMicro(), start+1), start+minute-1), nil
}

// maxCheckpointBucket is the last bucket whose start in µs fits an int64.
const maxCheckpointBucket = (1<<63 - 1) / int64(time.Minute/time.Microsecond)
