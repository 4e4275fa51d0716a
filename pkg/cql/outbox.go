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
