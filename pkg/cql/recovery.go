package cql

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/codec"
)

// RecoveryStats counts what one recovery pass did.
type RecoveryStats struct {
	// Scanned is the number of intents read.
	Scanned int
	// Committed is the number of intents found (or made) committed whose outbox rows were written.
	Committed int
	// Discarded is the number of intents whose events lost and were never committed.
	Discarded int
	// Young is the number of intents read and left alone because they are younger than the
	// grace period. A pass reads an open bucket only up to the grace period behind its clock, so
	// these are intents whose writer's clock was ahead of the sweeper's.
	Young int
	// Poison is the number of intents that can never be settled (envelopes that do not decode, a
	// batch the store refuses as invalid): left in pending_appends for an operator, reported in
	// the error, and neither stopping the pass nor holding the checkpoint.
	Poison int
}

// errPoisonIntent marks an intent recovery can never settle.
var errPoisonIntent = errors.New("intent cannot be settled, left in pending_appends")

const sweeperCheckpoint = "intent-sweeper"

// RecoverIntents settles every intent older than grace: it re-issues the intent's conditional
// batch (rolling the append forward if its writer died before committing), then, if the events
// at the intent's sequences are the intent's own, writes their outbox rows; either way it
// deletes the intent. It scans minute buckets from its checkpoint up to now and advances the
// checkpoint past buckets that hold no unsettled intents and that no writer can still write
// into (older than grace + Options.RecoveryClockMargin). Safe to run concurrently with writers
// and with other sweepers (every step is idempotent).
//
// A bucket still open to writers is read from where this store's previous pass left it (see
// sweepCursors): not the intents its earlier passes settled again, whose deletions are
// tombstones the store would otherwise read on every pass, a minute's worth per partition. The
// pass that closes a bucket reads it whole, as every pass did before.
func (st *EventStore) RecoverIntents(ctx context.Context, grace time.Duration) (RecoveryStats, error) {
	var stats RecoveryStats
	now := st.opts.Now().Round(0) // wall time only: the cursors are compared with ids' times
	last := Bucket(now)
	var from int64
	err := st.s.Query(`SELECT bucket FROM relay_checkpoints WHERE name = ? AND shard = 0`, sweeperCheckpoint).WithContext(ctx).Scan(&from)
	if errors.Is(err, gocql.ErrNotFound) {
		from = Bucket(now.Add(-st.opts.RecoveryLookback))
	} else if err != nil {
		return stats, fmt.Errorf("recover intents: read checkpoint: %w", UnavailableIn(ctx, err))
	}
	st.sweep.prune(from)
	// Intents up to upTo are old enough to settle; the younger ones are left for a later pass.
	upTo := now.Add(-grace)
	settledThrough := from - 1
	blocked := false
	var poisoned []error
	for b := from; b <= last; b++ {
		// A bucket is closed once no writer can still write an intent into it: the grace
		// period plus the margin for writers whose clock is behind ours (or that paused
		// between reading their clock and writing the intent).
		closed := !BucketStart(b + 1).After(upTo.Add(-st.opts.RecoveryClockMargin))
		keptInBucket := 0
		for shard := 0; shard < OutboxShards; shard++ {
			key := sweepKey{b, shard}
			// An open bucket is read after its cursor up to upTo; a closed one whole, once more,
			// before the checkpoint passes it.
			var after, until *time.Time
			if !closed {
				until = &upTo
				if t, ok := st.sweep.get(key); ok {
					after = &t
				}
			}
			ins, err := st.readIntents(ctx, b, shard, after, until)
			if err != nil {
				return stats, err
			}
			// Every intent up to next was read and settled: the next pass of an open bucket reads
			// after it. It stays below every intent this pass leaves.
			next := upTo
			leave := func(in *intent) {
				if t := in.attemptID.Time().Add(-timeUUIDTick); t.Before(next) {
					next = t
				}
			}
			for _, in := range ins {
				stats.Scanned++
				if in.poison != nil {
					stats.Poison++
					poisoned = append(poisoned, in.poison)
					leave(in) // reported, not holding the checkpoint
					continue
				}
				if now.Sub(in.createdAt) < grace {
					stats.Young++
					leave(in)
					keptInBucket++
					continue
				}
				committed, err := st.settle(ctx, in)
				if errors.Is(err, errOutboxLate) {
					// Rows written, intent kept for the next pass: the checkpoint must wait for it.
					stats.Committed++
					leave(in)
					keptInBucket++
					continue
				}
				if errors.Is(err, errPoisonIntent) {
					stats.Poison++
					poisoned = append(poisoned, err)
					leave(in)
					continue
				}
				if err != nil {
					return stats, err
				}
				if committed {
					stats.Committed++
				} else {
					stats.Discarded++
				}
			}
			if !closed { // a closed bucket's cursor is not read again; prune drops it
				st.sweep.set(key, next)
			}
		}
		if keptInBucket > 0 || !closed {
			blocked = true
		}
		if !blocked {
			settledThrough = b
		}
	}
	if settledThrough >= from {
		if err := st.s.Query(`INSERT INTO relay_checkpoints (name, shard, bucket, updated_at) VALUES (?, 0, ?, ?)`,
			sweeperCheckpoint, settledThrough+1, now.UTC()).WithContext(ctx).Exec(); err != nil {
			return stats, fmt.Errorf("recover intents: write checkpoint: %w", UnavailableIn(ctx, err))
		}
	}
	if len(poisoned) > 0 {
		return stats, fmt.Errorf("recover intents: %d intent(s) cannot be settled: %w", len(poisoned), errors.Join(poisoned...))
	}
	return stats, nil
}

// timeUUIDTick is the resolution of a time UUID.
const timeUUIDTick = 100 * time.Nanosecond

// sweepKey names one pending_appends partition.
type sweepKey struct {
	bucket int64
	shard  int
}

// sweepCursors remembers, per partition of a bucket still open to writers (kept until the
// checkpoint passes the bucket), the time up to which this store's recovery passes read every
// intent and left none unsettled: the next pass reads only the intents after it. An intent
// that became visible after a pass had read past its time (its writer's clock behind by more
// than the grace period, or paused that long before writing it) is read by the pass that
// closes its bucket, which reads the bucket whole. The cursors are this process's own: another
// sweeper, or this one restarted, starts from whole buckets.
type sweepCursors struct {
	mu    sync.Mutex
	after map[sweepKey]time.Time
}

func (c *sweepCursors) get(k sweepKey) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.after[k]
	return t, ok
}

func (c *sweepCursors) set(k sweepKey, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.after == nil {
		c.after = map[sweepKey]time.Time{}
	}
	c.after[k] = t
}

// prune forgets the partitions of buckets before from (passed by the checkpoint, perhaps
// another sweeper's).
func (c *sweepCursors) prune(from int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.after {
		if k.bucket < from {
			delete(c.after, k)
		}
	}
}

// readIntents reads the intents of one partition whose ids' times are after after and at most
// until (nil: unbounded).
func (st *EventStore) readIntents(ctx context.Context, bucket int64, shard int, after, until *time.Time) ([]*intent, error) {
	if after != nil && until != nil && !after.Before(*until) {
		return nil, nil
	}
	q, args := `SELECT attempt_id, aggregate_id, aggregate_type, expected_version, command_id, command_fingerprint,
 envelopes, created_at FROM pending_appends WHERE bucket = ? AND shard = ?`, []any{bucket, shard}
	if until != nil {
		q, args = q+` AND attempt_id <= ?`, append(args, gocql.MaxTimeUUID(*until))
	}
	if after != nil {
		q, args = q+` AND attempt_id > ?`, append(args, gocql.MaxTimeUUID(*after))
	}
	iter := st.s.Query(q, args...).WithContext(ctx).PageSize(200).Iter()
	var out []*intent
	for {
		in := &intent{bucket: bucket, shard: shard}
		var aggID gocql.UUID
		if !iter.Scan(&in.attemptID, &aggID, &in.req.AggregateType, &in.req.ExpectedVersion, &in.req.CommandID,
			&in.req.CommandFingerprint, &in.envelopes, &in.createdAt) {
			break
		}
		in.req.AggregateID = aggID.String()
		for _, b := range in.envelopes {
			env, err := codec.UnmarshalEnvelope(b)
			if err != nil {
				in.poison = fmt.Errorf("intent %s (bucket %d, shard %d) of %s: decode envelope: %w: %w",
					in.attemptID, bucket, shard, in.req.AggregateID, errPoisonIntent, err)
				break
			}
			in.req.Events = append(in.req.Events, env)
		}
		out = append(out, in)
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("recover intents: read bucket %d shard %d: %w", bucket, shard, UnavailableIn(ctx, err))
	}
	return out, nil
}

// settle rolls one intent forward or discards it, and reports whether its events are committed.
func (st *EventStore) settle(ctx context.Context, in *intent) (bool, error) {
	if len(in.req.Events) == 0 {
		return false, st.deleteIntent(ctx, in)
	}
	applied, _, _, cerr := st.commit(ctx, in.req)
	if cerr != nil && !invalid(cerr) {
		return false, fmt.Errorf("recover intent of %s: re-issue commit: %w", in.req.AggregateID, Unavailable(cerr))
	}
	committed := applied
	if !applied {
		// Not applied, or refused as invalid: its writer may still have committed it.
		var err error
		if committed, err = st.ownsSequences(ctx, in.req); err != nil {
			return false, fmt.Errorf("recover intent of %s: %w", in.req.AggregateID, UnavailableIn(ctx, err))
		}
		if !committed && cerr != nil {
			return false, fmt.Errorf("intent %s (bucket %d, shard %d) of %s: re-issue commit: %w: %w",
				in.attemptID, in.bucket, in.shard, in.req.AggregateID, errPoisonIntent, cerr)
		}
	}
	if committed {
		if err := st.writeOutbox(ctx, []*intent{in}); err != nil {
			if errors.Is(err, errOutboxLate) {
				return true, err
			}
			return false, fmt.Errorf("recover intent of %s: write outbox: %w", in.req.AggregateID, UnavailableIn(ctx, err))
		}
	}
	if err := st.deleteIntent(ctx, in); err != nil {
		return committed, fmt.Errorf("recover intent of %s: delete: %w", in.req.AggregateID, UnavailableIn(ctx, err))
	}
	return committed, nil
}
