package cql

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/es"
)

// intent is the durable record of an append in progress.
type intent struct {
	bucket    int64
	shard     int
	attemptID gocql.UUID
	req       es.AppendRequest
	envelopes [][]byte
	createdAt time.Time
	poison    error // why recovery can never settle it (its envelopes do not decode)
}

func newIntent(req es.AppendRequest, now time.Time) (*intent, error) {
	in := &intent{bucket: Bucket(now), shard: ShardOf(req.AggregateID), attemptID: gocql.UUIDFromTime(now), req: req, createdAt: now.UTC()}
	for _, e := range req.Events {
		b, err := codec.MarshalEnvelope(e)
		if err != nil {
			return nil, fmt.Errorf("append to %s: encode envelope: %w", req.AggregateID, err)
		}
		in.envelopes = append(in.envelopes, b)
	}
	return in, nil
}

func (st *EventStore) writeIntent(ctx context.Context, in *intent) error {
	aggID, _ := gocql.ParseUUID(in.req.AggregateID)
	return st.s.Query(`INSERT INTO pending_appends (bucket, shard, attempt_id, aggregate_id, aggregate_type, expected_version,
 command_id, command_fingerprint, envelopes, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)`,
		in.bucket, in.shard, in.attemptID, aggID, in.req.AggregateType, in.req.ExpectedVersion,
		in.req.CommandID, in.req.CommandFingerprint, in.envelopes, in.createdAt).WithContext(ctx).Exec()
}

func (st *EventStore) deleteIntent(ctx context.Context, in *intent) error {
	return st.s.Query(deleteIntentCQL, in.bucket, in.shard, in.attemptID).WithContext(ctx).Exec()
}

const deleteIntentCQL = `DELETE FROM pending_appends WHERE bucket = ? AND shard = ? AND attempt_id = ?`

// deleteIntents deletes intents of one pending_appends partition (one bucket and shard) in one
// single-partition batch.
func (st *EventStore) deleteIntents(ctx context.Context, ins []*intent) error {
	if len(ins) == 1 {
		return st.deleteIntent(ctx, ins[0])
	}
	b := st.s.Batch(gocql.UnloggedBatch).WithContext(ctx)
	for _, in := range ins {
		b.Query(deleteIntentCQL, in.bucket, in.shard, in.attemptID)
	}
	return st.s.ExecuteBatch(b)
}

// writeOutbox writes one outbox row per event of committed intents of one outbox shard, in one
// single-partition batch. One clock reading (the writer's Options.Now) decides both the rows'
// bucket and their ids, so a row always sits in the bucket its id belongs to, whatever the
// writer's clock says: a cursor that has read a bucket up to an id has seen every row of that
// bucket below it that was visible then. What is left is lateness (a row visible some time after
// its id): within the relay's safety window the fast cursor reads it, within the rescan window
// the rescan does. A write that took longer than Options.OutboxMaxDelay (a paused writer, a slow
// store) is written again at once with a fresh reading; if that one is slow too, an error is
// returned, the intents stay, and recovery writes the rows again later. Consumers drop the
// copies by event id.
func (st *EventStore) writeOutbox(ctx context.Context, ins []*intent) error {
	for attempt := 1; ; attempt++ {
		started := time.Now() // monotonic: measures the write, whatever Options.Now says
		if err := st.insertOutbox(ctx, ins, st.opts.Now()); err != nil {
			return err
		}
		took := time.Since(started)
		if took <= st.opts.OutboxMaxDelay {
			return nil
		}
		if attempt == 2 {
			return fmt.Errorf("outbox rows of %s and %d more appends took %s to write, more than %s: %w",
				ins[0].req.AggregateID, len(ins)-1, took, st.opts.OutboxMaxDelay, errOutboxLate)
		}
	}
}

// insertOutbox writes the rows of intents of one shard with ids taken at now, in now's bucket.
func (st *EventStore) insertOutbox(ctx context.Context, ins []*intent, now time.Time) error {
	b := st.s.Batch(gocql.UnloggedBatch).WithContext(ctx)
	for _, in := range ins {
		aggID, _ := gocql.ParseUUID(in.req.AggregateID)
		topic := st.TopicFor(in.req.AggregateType)
		bucket, shard := Bucket(now), ShardOf(in.req.AggregateID)
		for i, e := range in.req.Events {
			evID, _ := gocql.ParseUUID(e.EventID)
			b.Query(`INSERT INTO outbox_messages (bucket, shard, id, aggregate_id, aggregate_type, sequence, event_id, event_type,
 schema_version, topic, partition_key, envelope, correlation_id, causation_id, traceparent, created_at)
 VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
				bucket, shard, rowID(now), aggID, in.req.AggregateType, e.Sequence, evID, e.EventType,
				e.SchemaVersion, topic, in.req.AggregateID, in.envelopes[i], e.CorrelationID, e.CausationID, e.TraceParent, now.UTC())
		}
	}
	st.opts.Hook(StepOutboxBuilt)
	return st.s.ExecuteBatch(b)
}

// rowID returns a time UUID at t whose clock sequence and node are random (62 bits), so that
// writers on one host, or with one hardware address, never collide in the same 100 ns tick.
func rowID(t time.Time) gocql.UUID {
	u := gocql.UUIDFromTime(t)
	_, _ = rand.Read(u[8:])
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u
}

// errOutboxLate: the outbox rows were written, but twice too slowly to be sure a cursor reads
// them; the intent is kept so that recovery writes them again.
var errOutboxLate = errors.New("written late, recovery will write them again")

// RecoveryStats counts what one recovery pass did.
type RecoveryStats struct {
	// Scanned is the number of intents read.
	Scanned int
	// Committed is the number of intents found (or made) committed whose outbox rows were written.
	Committed int
	// Discarded is the number of intents whose events lost and were never committed.
	Discarded int
	// Young is the number of intents left alone because they are younger than the grace period.
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
// checkpoint past buckets that hold no young intents and that no writer can still write into
// (older than grace + Options.RecoveryClockMargin). Safe to run concurrently with writers and
// with other sweepers (every step is idempotent).
func (st *EventStore) RecoverIntents(ctx context.Context, grace time.Duration) (RecoveryStats, error) {
	var stats RecoveryStats
	now := st.opts.Now()
	last := Bucket(now)
	var from int64
	err := st.s.Query(`SELECT bucket FROM relay_checkpoints WHERE name = ? AND shard = 0`, sweeperCheckpoint).WithContext(ctx).Scan(&from)
	if errors.Is(err, gocql.ErrNotFound) {
		from = Bucket(now.Add(-st.opts.RecoveryLookback))
	} else if err != nil {
		return stats, fmt.Errorf("recover intents: read checkpoint: %w", UnavailableIn(ctx, err))
	}
	settledThrough := from - 1
	blocked := false
	var poisoned []error
	for b := from; b <= last; b++ {
		keptInBucket := 0
		for shard := 0; shard < OutboxShards; shard++ {
			ins, err := st.readIntents(ctx, b, shard)
			if err != nil {
				return stats, err
			}
			for _, in := range ins {
				stats.Scanned++
				if in.poison != nil {
					stats.Poison++
					poisoned = append(poisoned, in.poison)
					continue
				}
				if now.Sub(in.createdAt) < grace {
					stats.Young++
					keptInBucket++
					continue
				}
				committed, err := st.settle(ctx, in)
				if errors.Is(err, errOutboxLate) {
					// Rows written, intent kept for the next pass: the checkpoint must wait for it.
					stats.Committed++
					keptInBucket++
					continue
				}
				if errors.Is(err, errPoisonIntent) {
					stats.Poison++
					poisoned = append(poisoned, err)
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
		}
		// A bucket is settled once no writer can still write an intent into it: the grace
		// period plus the margin for writers whose clock is behind ours (or that paused
		// between reading their clock and writing the intent).
		if keptInBucket > 0 || BucketStart(b+1).After(now.Add(-grace-st.opts.RecoveryClockMargin)) {
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

func (st *EventStore) readIntents(ctx context.Context, bucket int64, shard int) ([]*intent, error) {
	iter := st.s.Query(`SELECT attempt_id, aggregate_id, aggregate_type, expected_version, command_id, command_fingerprint,
 envelopes, created_at FROM pending_appends WHERE bucket = ? AND shard = ?`, bucket, shard).WithContext(ctx).PageSize(200).Iter()
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

// OutboxRow is one row of the outbox as the relay reads it.
type OutboxRow struct {
	// Bucket and Shard locate the row's partition; ID orders rows inside it.
	Bucket int64
	Shard  int
	ID     gocql.UUID
	// AggregateID, AggregateType and Sequence identify the event in its stream.
	AggregateID, AggregateType string
	Sequence                   int64
	// EventID and EventType describe the event.
	EventID, EventType string
	// SchemaVersion is the payload's schema version.
	SchemaVersion int32
	// Topic and PartitionKey say where the event is published.
	Topic, PartitionKey string
	// Envelope is the protobuf EventEnvelope.
	Envelope []byte
	// CreatedAt is when the row was written.
	CreatedAt time.Time
}

// ReadOutbox returns up to limit rows of one outbox partition with id after afterID (zero UUID
// = from the start) and written before the given time, in id order.
func ReadOutbox(ctx context.Context, s *gocql.Session, bucket int64, shard int, afterID gocql.UUID, before time.Time, limit int) ([]OutboxRow, error) {
	if afterID == (gocql.UUID{}) {
		afterID = gocql.MinTimeUUID(BucketStart(bucket).Add(-24 * time.Hour))
	}
	iter := s.Query(`SELECT id, aggregate_id, aggregate_type, sequence, event_id, event_type, schema_version, topic,
 partition_key, envelope, created_at FROM outbox_messages WHERE bucket = ? AND shard = ? AND id > ? AND id < ? LIMIT ?`,
		bucket, shard, afterID, gocql.MaxTimeUUID(before), limit).WithContext(ctx).PageSize(limit).Iter()
	var out []OutboxRow
	for {
		r := OutboxRow{Bucket: bucket, Shard: shard}
		var aggID, evID gocql.UUID
		if !iter.Scan(&r.ID, &aggID, &r.AggregateType, &r.Sequence, &evID, &r.EventType, &r.SchemaVersion, &r.Topic,
			&r.PartitionKey, &r.Envelope, &r.CreatedAt) {
			break
		}
		r.AggregateID, r.EventID = aggID.String(), evID.String()
		out = append(out, r)
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("read outbox bucket %d shard %d: %w", bucket, shard, UnavailableIn(ctx, err))
	}
	return out, nil
}
