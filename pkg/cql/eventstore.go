package cql

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/es"
)

// OutboxShards is the number of shards the outbox and the intents are spread over per minute.
// Writers and readers must agree on it, so it is a constant of the schema.
const OutboxShards = 8

// Step names a point of the append protocol, for fault injection in tests.
type Step string

// The steps of the append protocol, in order (see docs/outbox-protocol.md).
const (
	StepIntentWritten  Step = "intent-written"  // the intent row is durable, nothing committed
	StepCommitted      Step = "committed"       // the conditional batch applied
	StepOutboxBuilt    Step = "outbox-built"    // the outbox rows' bucket and ids are taken, not yet sent
	StepOutboxWritten  Step = "outbox-written"  // the outbox rows are durable
	StepIntentSettled  Step = "intent-settled"  // the intent row is deleted
	StepResolveStarted Step = "resolve-started" // an unknown outcome is being resolved
)

// StepLoadHead is the point of a Load right before it reads the stream's head (its rows are
// read beside it).
const StepLoadHead Step = "load-head"

// DefaultOutboxMaxDelay is the default Options.OutboxMaxDelay: well above a normal write, well
// below the relay's rescan window (30 s), so that a late row is always within some cursor's reach.
const DefaultOutboxMaxDelay = time.Second

// Options tune an EventStore.
type Options struct {
	// PageSize is the number of events fetched per page when loading (default 1000: on a long
	// stream the page's round trip, not its size, bounds a replay).
	PageSize int
	// CommandTTL is how long command ids are remembered (default 24h).
	CommandTTL time.Duration
	// Topics maps aggregate types to broker topics (default Order → order-events, Customer →
	// customer-events, anything else → lower-case type + "-events").
	Topics map[string]string
	// ResolveTimeout bounds the SERIAL reads that settle an unknown outcome (default 10s).
	ResolveTimeout time.Duration
	// Hook, when set, is called at every step of the append protocol and at StepLoadHead (fault
	// injection in tests).
	Hook func(Step)
	// Now returns the current time (default time.Now). It decides an outbox row's bucket and id
	// (see writeOutbox) and an intent's bucket; the services pass a ClusterClock's Now, the
	// clock the relay's cursors read too.
	Now func() time.Time
	// OutboxMaxDelay: outbox rows whose write took longer are written once more with fresh ids,
	// so that none becomes visible long after its id (default DefaultOutboxMaxDelay).
	OutboxMaxDelay time.Duration
	// RecoveryLookback is how far back the first recovery pass (no checkpoint yet) looks for
	// intents (default 1h).
	RecoveryLookback time.Duration
	// Finishers bounds the appends whose outbox rows and intent deletion run in the background
	// at once (default DefaultFinishers); past it, Append finishes before it returns. Negative:
	// always before it returns.
	Finishers int
	// RecoveryClockMargin is how far behind the sweeper's clock a writer's clock may be (plus any
	// pause between reading it and writing the intent) without its intent landing in a bucket
	// recovery no longer reads (default DefaultRecoveryClockMargin): the pass that closes a
	// bucket, this long after it ended (plus the grace period), reads it whole once more.
	RecoveryClockMargin time.Duration
}

// DefaultRecoveryClockMargin is the default Options.RecoveryClockMargin.
const DefaultRecoveryClockMargin = time.Minute

// EventStore implements es.EventStore on a CQL store with the intent → conditional batch →
// outbox protocol described in docs/outbox-protocol.md.
type EventStore struct {
	s    *gocql.Session
	reg  *es.Registry
	opts Options
	fin  finishers
	// sweep is where this store's recovery passes left each open intent partition.
	sweep sweepCursors
}

var _ es.EventStore = (*EventStore)(nil)

// NewEventStore returns an event store on the session's keyspace; reg decodes and upcasts events.
func NewEventStore(s *gocql.Session, reg *es.Registry, opts Options) *EventStore {
	if opts.PageSize <= 0 {
		opts.PageSize = 1000
	}
	if opts.CommandTTL <= 0 {
		opts.CommandTTL = 24 * time.Hour
	}
	if opts.ResolveTimeout <= 0 {
		opts.ResolveTimeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.OutboxMaxDelay <= 0 {
		opts.OutboxMaxDelay = DefaultOutboxMaxDelay
	}
	if opts.RecoveryClockMargin <= 0 {
		opts.RecoveryClockMargin = DefaultRecoveryClockMargin
	}
	if opts.RecoveryLookback <= 0 {
		opts.RecoveryLookback = time.Hour
	}
	if opts.Hook == nil {
		opts.Hook = func(Step) {}
	}
	if opts.Finishers == 0 {
		opts.Finishers = DefaultFinishers
	}
	return &EventStore{s: s, reg: reg, opts: opts, fin: newFinishers(opts.Finishers)}
}

// Session returns the underlying session.
func (st *EventStore) Session() *gocql.Session { return st.s }

// TopicFor returns the topic events of the aggregate type are published to.
func (st *EventStore) TopicFor(aggregateType string) string {
	if t, ok := st.opts.Topics[aggregateType]; ok {
		return t
	}
	return DefaultTopic(aggregateType)
}

// DefaultTopic returns the default topic of an aggregate type ("Order" → "order-events").
func DefaultTopic(aggregateType string) string {
	return strings.ToLower(aggregateType) + "-events"
}

// ShardOf returns the outbox shard of an aggregate.
func ShardOf(aggregateID string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(aggregateID))
	return int(h.Sum32() % OutboxShards)
}

// Bucket returns the minute bucket of t.
func Bucket(t time.Time) int64 { return t.Unix() / 60 }

// BucketStart returns the first instant of a minute bucket.
func BucketStart(b int64) time.Time { return time.Unix(b*60, 0).UTC() }

// parseUUID converts an id to gocql's type, or returns a validation error naming field. It
// accepts every UUID, the nil one included: appends are checked by es.Envelope.Check (the rule
// every service shares), and reads must still reach aggregates that older writers stored.
func parseUUID(field, s string) (gocql.UUID, error) {
	u, err := gocql.ParseUUID(s)
	if err != nil {
		return u, es.Invalid(field, "must be a UUID")
	}
	return u, nil
}

func (st *EventStore) validate(ctx context.Context, req *es.AppendRequest) error {
	if _, err := parseUUID("aggregate_id", req.AggregateID); err != nil {
		return err
	}
	return es.PrepareAppend(ctx, st.reg, req)
}

func commandValue(fp string, first, last int64) string {
	return fp + "|" + strconv.FormatInt(first, 10) + "|" + strconv.FormatInt(last, 10) // fp|first|last
}

// rejectionValue is a rejected command id's entry in the commands map: five fields, which
// releases before rejections were kept there skip (they read three).
func rejectionValue(fp string, version int64, rule, reason string) string {
	return fmt.Sprintf("%s|rejected|%d|%s|%s", fp, version, rule, reason)
}

func parseCommandValue(v string) (es.CommandRecord, bool) {
	if parts := strings.SplitN(v, "|", 5); len(parts) == 5 && parts[1] == "rejected" {
		at, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil {
			return es.CommandRecord{}, false
		}
		return es.CommandRecord{Fingerprint: parts[0], FirstSequence: at, LastSequence: at, Rejected: true,
			Rule: parts[3], Reason: parts[4]}, true
	}
	parts := strings.Split(v, "|")
	if len(parts) != 3 {
		return es.CommandRecord{}, false
	}
	first, err1 := strconv.ParseInt(parts[1], 10, 64)
	last, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return es.CommandRecord{}, false
	}
	return es.CommandRecord{Fingerprint: parts[0], FirstSequence: first, LastSequence: last}, true
}

// Append runs the append protocol: intent, conditional batch; once the batch committed it
// returns, and the outbox rows and the intent's deletion follow in the background (see
// finishLater; Close waits for them).
func (st *EventStore) Append(ctx context.Context, req es.AppendRequest) (es.AppendResult, error) {
	if err := st.validate(ctx, &req); err != nil {
		return es.AppendResult{}, err
	}
	in, err := newIntent(req, st.opts.Now())
	if err != nil {
		return es.AppendResult{}, err
	}
	if err := st.writeIntent(ctx, in); err != nil {
		return es.AppendResult{}, fmt.Errorf("append to %s: write intent: %w", req.AggregateID, UnavailableIn(ctx, err))
	}
	st.opts.Hook(StepIntentWritten)

	committed, actual, recorded, err := st.commit(ctx, req)
	switch {
	case err != nil && refused(err):
		// The batch was never executed: nothing can commit later, so the intent can go.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), st.opts.ResolveTimeout)
		_ = st.deleteIntent(dctx, in) // if this fails, recovery finds the events are not ours
		cancel()
		return es.AppendResult{}, fmt.Errorf("append to %s: %w", req.AggregateID, refusedError(err))
	case err != nil:
		// The outcome is unknown (timeout, lost connection, CAS_WRITE_UNKNOWN): the coordinator
		// may still be running the Paxos round and commit it after any read of ours. A SERIAL
		// read that finds our events proves the commit, and one that finds another writer's
		// events at our sequences proves ours can never commit (its condition is false for
		// good); anything else (nothing there, or no answer) leaves it unknown.
		st.opts.Hook(StepResolveStarted)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), st.opts.ResolveTimeout)
		holder, rerr := st.holder(rctx, req)
		cancel()
		switch {
		case rerr == nil && holder == req.Events[0].EventID:
			committed = true
		case rerr == nil && holder != "":
			committed, actual = false, -1
		default:
			// Not a conflict: return Unavailable and leave the intent, which recovery rolls
			// forward or discards; a retry with the same command id then gets the first outcome.
			return es.AppendResult{}, fmt.Errorf("append to %s: outcome unknown, recovery will settle it: %w: %w",
				req.AggregateID, es.ErrUnavailable, err)
		}
	case !committed:
		// A recovery sweeper may have committed our own intent already.
		if committed, err = st.ownsSequences(ctx, req); err != nil {
			return es.AppendResult{}, fmt.Errorf("append to %s: check conflict: %w", req.AggregateID, UnavailableIn(ctx, err))
		}
	}
	if !committed {
		// A failed delete is harmless: recovery finds the events are not ours and deletes it.
		_ = st.deleteIntent(ctx, in)
		if req.ExpectedVersion == 0 {
			return es.AppendResult{}, fmt.Errorf("create %s %s: %w", req.AggregateType, req.AggregateID, es.ErrAlreadyExists)
		}
		return es.AppendResult{}, &es.ConflictError{AggregateID: req.AggregateID, Expected: req.ExpectedVersion, Actual: actual,
			CommandRecorded: recorded}
	}
	st.opts.Hook(StepCommitted)

	// Committed, so the append succeeded whatever happens next: the outbox rows and the intent's
	// deletion follow after the answer (finish), and if they fail or this process dies first,
	// the intent stays and recovery writes the outbox rows from it.
	st.finishLater(ctx, in)
	res := es.AppendResult{Version: req.ExpectedVersion + int64(len(req.Events)), EventIDs: make([]string, 0, len(req.Events))}
	for _, e := range req.Events {
		res.EventIDs = append(res.EventIDs, e.EventID)
	}
	return res, nil
}

const insertEvent = `INSERT INTO event_store (aggregate_id, sequence, event_id, event_type, schema_version, payload,
 causation_id, correlation_id, user_id, occurred_at, metadata, traceparent, tracestate) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`

const insertFirstEvent = `INSERT INTO event_store (aggregate_id, sequence, event_id, event_type, schema_version, payload,
 causation_id, correlation_id, user_id, occurred_at, metadata, traceparent, tracestate, aggregate_type, version)
 VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) IF NOT EXISTS`

// eventArgs returns the values of insertEvent for e, with room for extra more (those
// insertFirstEvent adds).
func eventArgs(aggID gocql.UUID, e es.Envelope, extra ...any) []any {
	evID, _ := gocql.ParseUUID(e.EventID)
	return append(append(make([]any, 0, 13+len(extra)), aggID, e.Sequence, evID, e.EventType, e.SchemaVersion, e.Payload,
		e.CausationID, e.CorrelationID, e.UserID, e.OccurredAt.UTC(), e.Metadata, e.TraceParent, e.TraceState), extra...)
}

// Unavailable marks an error of a driver call with es.ErrUnavailable, so the edge maps it to
// Unavailable: every such error, a statement the server refuses included (a missing grant or
// table is the operator's to fix, and a projector must retry rather than dead-letter an event
// over it); an error already marked and context errors are returned as they are.
func Unavailable(err error) error {
	if err == nil || errors.Is(err, es.ErrUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %w", es.ErrUnavailable, err)
}

// UnavailableIn is Unavailable for the error of a call made with ctx: a context error while ctx
// itself is still live came from the driver (gocql reports a connection closed under a call as
// context.Canceled), not from the caller, so it is an infrastructure error too and a client may
// retry (found with a Cassandra node paused in TestThreeNodeClusterFaults).
func UnavailableIn(ctx context.Context, err error) error {
	if err != nil && ctx.Err() == nil && !errors.Is(err, es.ErrUnavailable) &&
		(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		// %v, not %w: the edge maps a context error to Canceled or DeadlineExceeded first, and
		// this one is not the caller's.
		return fmt.Errorf("%w: %v", es.ErrUnavailable, err)
	}
	return Unavailable(err)
}

// Exists reports whether the aggregate has events.
func (st *EventStore) Exists(ctx context.Context, aggregateID string) (bool, error) {
	h, err := st.Head(ctx, aggregateID)
	return h.Version > 0, err
}

// SaveSnapshot stores a snapshot and drops all but the three newest.
func (st *EventStore) SaveSnapshot(ctx context.Context, s es.Snapshot) error {
	aggID, err := parseUUID("aggregate_id", s.AggregateID)
	if err != nil {
		return err
	}
	if err := st.s.Query(`INSERT INTO snapshots (aggregate_id, version, aggregate_type, schema_version, state, taken_at) VALUES (?,?,?,?,?,?)`,
		aggID, s.Version, s.AggregateType, s.SchemaVersion, s.State, s.TakenAt.UTC()).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("save snapshot %s@%d: %w", s.AggregateID, s.Version, UnavailableIn(ctx, err))
	}
	var versions []int64
	iter := st.s.Query(`SELECT version FROM snapshots WHERE aggregate_id = ? LIMIT 4`, aggID).WithContext(ctx).Iter()
	var v int64
	for iter.Scan(&v) {
		versions = append(versions, v)
	}
	if err := iter.Close(); err == nil && len(versions) == 4 {
		_ = st.s.Query(`DELETE FROM snapshots WHERE aggregate_id = ? AND version <= ?`, aggID, versions[3]).WithContext(ctx).Exec()
	}
	return nil
}

// LatestSnapshot returns the newest snapshot at or below maxVersion (0 = any).
func (st *EventStore) LatestSnapshot(ctx context.Context, aggregateID string, maxVersion int64) (es.Snapshot, error) {
	aggID, err := parseUUID("aggregate_id", aggregateID)
	if err != nil {
		return es.Snapshot{}, err
	}
	q := st.s.Query(`SELECT version, aggregate_type, schema_version, state, taken_at FROM snapshots WHERE aggregate_id = ? LIMIT 1`, aggID)
	if maxVersion > 0 {
		q = st.s.Query(`SELECT version, aggregate_type, schema_version, state, taken_at FROM snapshots WHERE aggregate_id = ? AND version <= ? LIMIT 1`, aggID, maxVersion)
	}
	s := es.Snapshot{AggregateID: aggregateID}
	err = q.WithContext(ctx).Scan(&s.Version, &s.AggregateType, &s.SchemaVersion, &s.State, &s.TakenAt)
	if errors.Is(err, gocql.ErrNotFound) {
		return es.Snapshot{}, fmt.Errorf("snapshot of %s: %w", aggregateID, es.ErrNotFound)
	}
	if err != nil {
		return es.Snapshot{}, fmt.Errorf("snapshot of %s: %w", aggregateID, UnavailableIn(ctx, err))
	}
	s.TakenAt = s.TakenAt.UTC()
	return s, nil
}
