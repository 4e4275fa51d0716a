package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/telemetry"
)

// Defaults of Options.
const (
	// DefaultRetryBackoff is the first pause before deciding again after a lost race.
	DefaultRetryBackoff = 5 * time.Millisecond
	// DefaultMaxRetryBackoff caps the pause between two attempts.
	DefaultMaxRetryBackoff = 100 * time.Millisecond
	// DefaultSnapshotTimeout bounds one background snapshot write.
	DefaultSnapshotTimeout = 10 * time.Second
	// DefaultCacheSize is the number of aggregates a Service keeps in memory.
	DefaultCacheSize = 10000
)

// Attributes Handler.Execute sets on the caller's span (the gRPC server span of the call): the
// same keys as the relay's publish spans and the projector's spans, so a search by
// correlation_id finds one command's trace in every service.
const (
	// SpanAttrCorrelationID is the correlation id of the business request.
	SpanAttrCorrelationID = "correlation_id"
	// SpanAttrAggregateID is the aggregate the command addresses.
	SpanAttrAggregateID = "aggregate_id"
	// SpanAttrCommandID is the client's command id (set only when the request has one).
	SpanAttrCommandID = "command_id"
	// SpanAttrCausationID is the causation id of the events (the command id, or a fresh id).
	SpanAttrCausationID = "causation_id"
)

// tracerName names the tracer of the load, decide and append spans.
const tracerName = "github.com/ordersys/ordersys/services/command/internal/app"

// Options configure a Service. Every field is optional.
type Options struct {
	// SnapshotEvery takes a snapshot whenever an append crosses a multiple of it (0 disables).
	SnapshotEvery int
	// MaxRetries is how many times a command whose append lost a race is decided again when
	// the client set no expected version (0: never; the conflict is returned at once).
	MaxRetries int
	// RetryBackoff is the first pause before a retry; it grows by half each time, jittered by
	// ±50%, up to MaxRetryBackoff.
	RetryBackoff, MaxRetryBackoff time.Duration
	// SnapshotTimeout bounds one background snapshot write.
	SnapshotTimeout time.Duration
	// CacheSize is how many recently used aggregates are kept in memory, so that a command
	// reads only the events appended since its aggregate was last used (default
	// DefaultCacheSize; negative disables the cache).
	CacheSize int
	// Rejections remembers rule rejections of commands that carry a command id; nil disables.
	Rejections RejectionLog
	// Metrics receives the command metrics; nil means unregistered ones.
	Metrics *Metrics
	// Logger receives failures of background work and, at debug, one line per command.
	Logger *slog.Logger
	// Now returns the decision time (default time.Now); it is truncated to the millisecond,
	// the precision the store keeps, so that in-memory and replayed states agree.
	Now func() time.Time
	// NewID returns fresh UUIDs for event ids, correlation and causation ids (default ids.New).
	NewID func() string
}

// Service executes commands against an es.EventStore. It is safe for concurrent use; the
// typed entry points are Handlers (see NewHandler, NewOrderHandler, NewCustomerHandler).
//
// Commands on one aggregate run one at a time per Service, in arrival order: concurrent
// requests for the same aggregate reaching the same process queue instead of racing each other
// through the store's conditional append (a Paxos round each on Cassandra, where contention
// costs far more than waiting). Races between processes are settled by the store and retried.
type Service struct {
	store  es.EventStore
	opts   Options
	tracer trace.Tracer
	bg     sync.WaitGroup
	locks  keyedMutex
	cache  *aggCache
}

// NewService returns a service appending to store.
func NewService(store es.EventStore, opts Options) *Service {
	if opts.MaxRetries < 0 {
		opts.MaxRetries = 0
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = DefaultRetryBackoff
	}
	if opts.MaxRetryBackoff < opts.RetryBackoff {
		opts.MaxRetryBackoff = max(DefaultMaxRetryBackoff, opts.RetryBackoff)
	}
	if opts.SnapshotTimeout <= 0 {
		opts.SnapshotTimeout = DefaultSnapshotTimeout
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.NewID == nil {
		opts.NewID = ids.New
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = DefaultCacheSize
	}
	return &Service{store: store, opts: opts, tracer: otel.Tracer(tracerName), cache: newAggCache(opts.CacheSize)}
}

// Store returns the event store the service appends to.
func (s *Service) Store() es.EventStore { return s.store }

// Wait blocks until the background snapshot writes started so far are done, or ctx ends.
// Call it after the transport stopped accepting commands.
func (s *Service) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.bg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for background snapshots: %w", ctx.Err())
	}
}

// Meta is what the transport knows about the caller of a command.
type Meta struct {
	// CorrelationID ties together everything one business request caused; a new one is made
	// when empty.
	CorrelationID string
	// UserID is the authenticated user, as the layer in front of the service asserted it.
	UserID string
}

// Request is one command to execute against one aggregate.
type Request[C any] struct {
	// AggregateID is the target aggregate's UUID.
	AggregateID string
	// Command is the domain command.
	Command C
	// Name names the command kind for metrics, spans and event metadata, e.g. "CreateOrder".
	Name string
	// CommandID is the client's idempotency key (empty: none). It becomes the events'
	// causation id; a fresh one is made when empty.
	CommandID string
	// Fingerprint identifies the command's content, so that a command id reused for another
	// command is told apart from a repeat (es.ErrCommandIDReused).
	Fingerprint string
	// ExpectedVersion, when set, makes the command fail with an *es.ConflictError unless the
	// aggregate is at exactly that version; lost races are then not retried.
	ExpectedVersion *int64
	// Meta describes the caller.
	Meta Meta
}

// Result is the outcome of a command that succeeded (or of its first execution, for a repeat).
type Result struct {
	// AggregateID is the aggregate the command changed.
	AggregateID string
	// Version is the aggregate's version after the command.
	Version int64
	// EventIDs are the ids of the events the command appended, in sequence order.
	EventIDs []string
	// Duplicate is true when the command id had been executed before: nothing was appended
	// and the first outcome is returned.
	Duplicate bool
	// CorrelationID is the correlation id the events carry (the request's or a new one).
	CorrelationID string
}

// Decider is an aggregate that decides commands of type C: pkg/domain/order.Order and
// pkg/domain/customer.Customer.
type Decider[C any] interface {
	es.Aggregate
	// Decide returns the events cmd produces, without changing the aggregate.
	Decide(cmd C, now time.Time) ([]es.Event, error)
}

// Kind describes one aggregate kind to a Handler.
type Kind[A Decider[C], C any] struct {
	// AggregateType is the type recorded in envelopes and snapshots, e.g. "Order".
	AggregateType string
	// New returns the aggregate with the given id at version 0.
	New func(id string) A
	// Snapshots encodes and restores snapshots; nil disables them for this kind.
	Snapshots es.SnapshotCodec
	// Prepare completes a command with what Decide needs from outside its aggregate (an
	// order's Create gets its customer's standing); it runs on every attempt, after the
	// command id was found new, so a retry sees current data. nil: nothing to add.
	Prepare func(ctx context.Context, cmd C) (C, error)
}

// Handler executes the commands of one aggregate kind.
type Handler[A Decider[C], C any] struct {
	svc  *Service
	kind Kind[A, C]
}

// NewHandler returns a handler of kind's commands running on svc.
func NewHandler[A Decider[C], C any](svc *Service, kind Kind[A, C]) *Handler[A, C] {
	return &Handler[A, C]{svc: svc, kind: kind}
}

// Execute runs one command: load, de-duplicate, check the expected version, decide, append,
// retry a lost race (without expected version, at most Options.MaxRetries times) and, when
// due, snapshot in the background. Errors are the domain's and the store's (see the package
// comment); a repeated command id returns the first outcome with Duplicate set.
func (h *Handler[A, C]) Execute(ctx context.Context, req Request[C]) (res Result, err error) {
	s := h.svc
	start := time.Now()
	if req.Meta.CorrelationID == "" {
		req.Meta.CorrelationID = s.opts.NewID()
	}
	defer func() {
		outcome := Outcome(err, res.Duplicate)
		d := time.Since(start)
		s.opts.Metrics.observeCommand(req.Name, outcome, d)
		s.opts.Logger.DebugContext(ctx, "command", "command", req.Name, "aggregate_id", req.AggregateID,
			"command_id", req.CommandID, "correlation_id", req.Meta.CorrelationID, "outcome", outcome,
			"version", res.Version, "duration", d, "err", err)
	}()

	causation := req.CommandID
	if causation == "" {
		causation = s.opts.NewID()
	}
	// The caller's span (the gRPC server span) carries the ids that find this command's trace.
	attrs := []attribute.KeyValue{
		attribute.String(SpanAttrCorrelationID, req.Meta.CorrelationID),
		attribute.String(SpanAttrAggregateID, req.AggregateID),
		attribute.String(SpanAttrCausationID, causation),
	}
	if req.CommandID != "" {
		attrs = append(attrs, attribute.String(SpanAttrCommandID, req.CommandID))
	}
	trace.SpanFromContext(ctx).SetAttributes(attrs...)
	traceparent, tracestate := telemetry.TraceContextFromContext(ctx)
	meta := es.Metadata{
		CausationID:   causation,
		CorrelationID: req.Meta.CorrelationID,
		UserID:        req.Meta.UserID,
		TraceParent:   traceparent,
		TraceState:    tracestate,
		Extra:         map[string]string{"command": req.Name},
	}

	bo := &backoff.ExponentialBackOff{
		InitialInterval:     s.opts.RetryBackoff,
		RandomizationFactor: 0.5,
		Multiplier:          1.5,
		MaxInterval:         s.opts.MaxRetryBackoff,
	}
	bo.Reset()
	for attempt := 0; ; attempt++ {
		var retry bool
		res, retry, err = h.attempt(ctx, req, meta)
		if !retry || attempt >= s.opts.MaxRetries {
			res.CorrelationID = req.Meta.CorrelationID
			return res, err
		}
		s.opts.Metrics.retries.WithLabelValues(req.Name).Inc()
		t := time.NewTimer(bo.NextBackOff())
		select {
		case <-ctx.Done():
			t.Stop()
			return Result{}, fmt.Errorf("%s %s: retry after conflict: %w", req.Name, req.AggregateID, ctx.Err())
		case <-t.C:
		}
	}
}

// attempt runs the command once; retry reports a lost race that Execute may retry.
func (h *Handler[A, C]) attempt(ctx context.Context, req Request[C], meta es.Metadata) (res Result, retry bool, err error) {
	s := h.svc
	unseen := false // the command id is neither recorded nor remembered as rejected
	if req.ExpectedVersion != nil {
		if unseen, err = h.checkExpectedVersion(ctx, req); err != nil {
			return Result{}, false, err
		}
	}
	// Locked per kind and id: an order's command reads its customer under the customer's lock,
	// and a client may give an order the id of a customer.
	unlock, err := s.locks.lock(ctx, h.cacheKey(req.AggregateID))
	if err != nil {
		return Result{}, false, fmt.Errorf("%s %s: wait for the commands before it: %w", req.Name, req.AggregateID, err)
	}
	defer unlock()
	if unseen {
		// The head showed the expected version and no record of this command id a moment ago;
		// if the aggregate has since gone past it (versions only grow), fail without a read.
		if cached, ok := s.cache.get(h.cacheKey(req.AggregateID)); ok && cached.Version() > *req.ExpectedVersion {
			return Result{}, false, &es.ConflictError{AggregateID: req.AggregateID, Expected: *req.ExpectedVersion, Actual: cached.Version()}
		}
	}
	agg, head, rej, err := h.loadForCommand(ctx, req)
	if err != nil {
		return Result{}, false, err
	}

	// A repeated command id: the first outcome, or the first rejection.
	if req.CommandID != "" {
		if rec, ok := head.Commands[req.CommandID]; ok {
			if rec.Fingerprint != req.Fingerprint {
				return Result{}, false, fmt.Errorf("%s %s: command %s: %w", req.Name, req.AggregateID, req.CommandID, es.ErrCommandIDReused)
			}
			res, err := h.firstOutcome(ctx, req.AggregateID, rec)
			return res, false, err
		}
		if rej != nil {
			if rej.Fingerprint != req.Fingerprint {
				return Result{}, false, fmt.Errorf("%s %s: command %s: %w", req.Name, req.AggregateID, req.CommandID, es.ErrCommandIDReused)
			}
			return Result{}, false, &es.RuleError{Rule: rej.Rule, Reason: rej.Reason}
		}
	}

	before := agg.Version()
	if req.ExpectedVersion != nil && *req.ExpectedVersion != before {
		return Result{}, false, &es.ConflictError{AggregateID: req.AggregateID, Expected: *req.ExpectedVersion, Actual: before}
	}

	cmd := req.Command
	if h.kind.Prepare != nil {
		if cmd, err = h.kind.Prepare(ctx, cmd); err != nil {
			return Result{}, false, err
		}
	}
	now := s.opts.Now().UTC().Truncate(time.Millisecond)
	_, span := s.tracer.Start(ctx, "decide "+req.Name, trace.WithAttributes(
		attribute.String("ordersys.aggregate_id", req.AggregateID), attribute.Int64("ordersys.version", before)))
	events, err := agg.Decide(cmd, now)
	endSpan(span, err)
	if err != nil {
		var re *es.RuleError
		// A refusal about another aggregate (Subject set, e.g. the order's customer) is not
		// remembered: it may be lifted without this aggregate changing, and a retry of the same
		// command id must then be decided again.
		if errors.As(err, &re) && re.Subject == "" && req.CommandID != "" && s.opts.Rejections != nil {
			r := Rejection{Fingerprint: req.Fingerprint, Rule: re.Rule, Reason: re.Reason}
			if rerr := s.opts.Rejections.Remember(ctx, req.AggregateID, req.CommandID, r); rerr != nil {
				s.opts.Logger.WarnContext(ctx, "remember rejected command", "aggregate_id", req.AggregateID,
					"command_id", req.CommandID, "err", rerr)
			}
		}
		return Result{}, false, err
	}
	if len(events) == 0 {
		return Result{AggregateID: req.AggregateID, Version: before, EventIDs: []string{}}, false, nil
	}

	envs := es.NewEnvelopes(agg, events, meta, now, s.opts.NewID)
	appendCtx, span := s.tracer.Start(ctx, "append "+h.kind.AggregateType, trace.WithAttributes(
		attribute.String("ordersys.aggregate_id", req.AggregateID), attribute.Int64("ordersys.expected_version", before),
		attribute.Int("ordersys.events", len(envs))))
	t0 := time.Now()
	out, err := s.store.Append(appendCtx, es.AppendRequest{
		AggregateID:        req.AggregateID,
		AggregateType:      h.kind.AggregateType,
		ExpectedVersion:    before,
		Events:             envs,
		CommandID:          req.CommandID,
		CommandFingerprint: req.Fingerprint,
	})
	s.opts.Metrics.observeAppend(h.kind.AggregateType, err, time.Since(t0))
	endSpan(span, err)
	if err != nil {
		lost := errors.Is(err, es.ErrConcurrencyConflict) || (before == 0 && errors.Is(err, es.ErrAlreadyExists))
		if lost {
			s.opts.Metrics.conflict.WithLabelValues(req.Name).Inc()
		}
		return Result{}, lost && req.ExpectedVersion == nil, err
	}

	// Bring the state to the new version, for the cache and the snapshot.
	if err := es.Replay(agg, envs); err != nil {
		s.cache.remove(h.cacheKey(req.AggregateID))
		s.opts.Logger.WarnContext(ctx, "apply own events", "aggregate_id", req.AggregateID, "err", err)
	} else {
		s.cache.put(h.cacheKey(req.AggregateID), agg) // already there unless just created
		if es.SnapshotDue(before, out.Version, s.opts.SnapshotEvery) && h.kind.Snapshots != nil {
			h.snapshotLater(ctx, agg)
		}
	}
	return Result{AggregateID: req.AggregateID, Version: out.Version, EventIDs: out.EventIDs}, false, nil
}

// checkExpectedVersion fails fast, without queueing behind the aggregate's other commands,
// when the stream head shows the aggregate is not at the client's expected version and the
// command id is neither recorded nor remembered as rejected (those return the first outcome).
// A nil error means: go on, the full check follows under the aggregate's lock; unseen then
// reports that the head was read, at the expected version, without a record of the command id
// or a remembered rejection.
func (h *Handler[A, C]) checkExpectedVersion(ctx context.Context, req Request[C]) (unseen bool, err error) {
	var ch chan bool
	if req.CommandID != "" && h.svc.opts.Rejections != nil {
		ch = make(chan bool, 1)
		go func() {
			_, found, err := h.svc.opts.Rejections.Recall(ctx, req.AggregateID, req.CommandID)
			ch <- found || err != nil
		}()
	}
	head, err := h.svc.store.Head(ctx, req.AggregateID)
	remembered := ch != nil && <-ch
	if err != nil || remembered {
		return false, nil
	}
	if _, recorded := head.Commands[req.CommandID]; recorded && req.CommandID != "" {
		return false, nil
	}
	if head.Version == *req.ExpectedVersion {
		return true, nil
	}
	return false, &es.ConflictError{AggregateID: req.AggregateID, Expected: *req.ExpectedVersion, Actual: head.Version}
}

// loadForCommand loads the aggregate and, when the request has a command id, recalls a
// remembered rejection of it at the same time.
func (h *Handler[A, C]) loadForCommand(ctx context.Context, req Request[C]) (A, es.StreamHead, *Rejection, error) {
	type recalled struct {
		r     Rejection
		found bool
		err   error
	}
	var ch chan recalled
	if req.CommandID != "" && h.svc.opts.Rejections != nil {
		ch = make(chan recalled, 1)
		go func() {
			r, found, err := h.svc.opts.Rejections.Recall(ctx, req.AggregateID, req.CommandID)
			ch <- recalled{r, found, err}
		}()
	}
	agg, head, err := h.loadCached(ctx, req.AggregateID)
	var rej *Rejection
	if ch != nil {
		rc := <-ch
		if err == nil && rc.err != nil {
			err = fmt.Errorf("recall rejection of command %s: %w", req.CommandID, rc.err)
		}
		if rc.found {
			rej = &rc.r
		}
	}
	return agg, head, rej, err
}

// Read calls read with the aggregate at its current version (through the cache, caught up with
// the store like a command's load) while holding the aggregate's lock, so read sees a state no
// command of this process is changing. read is called even when the aggregate does not exist
// (version 0).
func (h *Handler[A, C]) Read(ctx context.Context, aggregateID string, read func(A)) error {
	unlock, err := h.svc.locks.lock(ctx, h.cacheKey(aggregateID))
	if err != nil {
		return fmt.Errorf("read %s %s: %w", h.kind.AggregateType, aggregateID, err)
	}
	defer unlock()
	agg, _, err := h.loadCached(ctx, aggregateID)
	if err != nil {
		return err
	}
	read(agg)
	return nil
}

// Load returns the aggregate at its current version from the store: the newest snapshot,
// restored, plus the events after it (every event when there is no usable snapshot). It does not
// use or fill the service's cache.
func (h *Handler[A, C]) Load(ctx context.Context, aggregateID string) (A, error) {
	agg, _, err := h.load(ctx, aggregateID)
	return agg, err
}

func (h *Handler[A, C]) cacheKey(id string) string { return h.kind.AggregateType + "/" + id }

// loadCached is load through the cache; the caller holds the aggregate's lock. A cached
// aggregate is caught up with the events appended since it was cached (one read, usually of
// one row); the result is cached when the aggregate exists.
func (h *Handler[A, C]) loadCached(ctx context.Context, id string) (A, es.StreamHead, error) {
	s := h.svc
	key := h.cacheKey(id)
	if cached, ok := s.cache.get(key); ok {
		if agg, ok := cached.(A); ok {
			ctx, span := s.tracer.Start(ctx, "load "+h.kind.AggregateType, trace.WithAttributes(
				attribute.String("ordersys.aggregate_id", id), attribute.Int64("ordersys.cached_version", agg.Version())))
			var applyErr error
			head, err := s.store.Load(ctx, id, agg.Version()+1, func(env es.Envelope) error {
				if applyErr = es.ApplyEnvelope(agg, env); applyErr != nil {
					return applyErr
				}
				return nil
			})
			if err == nil && head.Version < agg.Version() {
				err = fmt.Errorf("cached %s %s at version %d, store at %d", h.kind.AggregateType, id, agg.Version(), head.Version)
				applyErr = err
			}
			if err == nil {
				span.SetAttributes(attribute.Int64("ordersys.version", agg.Version()))
			}
			endSpan(span, err)
			switch {
			case err == nil:
				return agg, head, nil
			case applyErr == nil:
				// The store failed: the cached state may be half caught up.
				s.cache.remove(key)
				return agg, head, fmt.Errorf("load %s %s: %w", h.kind.AggregateType, id, err)
			}
			s.opts.Logger.WarnContext(ctx, "cached aggregate dropped", "aggregate_id", id, "err", err)
		}
		s.cache.remove(key)
	}
	agg, head, err := h.load(ctx, id)
	if err == nil && agg.Version() > 0 {
		s.cache.put(key, agg)
	}
	return agg, head, err
}

func (h *Handler[A, C]) load(ctx context.Context, id string) (agg A, head es.StreamHead, err error) {
	s := h.svc
	ctx, span := s.tracer.Start(ctx, "load "+h.kind.AggregateType, trace.WithAttributes(attribute.String("ordersys.aggregate_id", id)))
	defer func() {
		if err == nil {
			span.SetAttributes(attribute.Int64("ordersys.version", agg.Version()))
		}
		endSpan(span, err)
	}()

	restored := false
	if h.kind.Snapshots != nil {
		snap, err := s.store.LatestSnapshot(ctx, id, 0)
		switch {
		case err == nil:
			if a, rerr := h.restore(snap); rerr != nil {
				s.opts.Logger.WarnContext(ctx, "snapshot unusable, replaying every event", "aggregate_id", id,
					"snapshot_version", snap.Version, "err", rerr)
			} else {
				agg, restored = a, true
				span.SetAttributes(attribute.Int64("ordersys.snapshot_version", snap.Version))
			}
		case errors.Is(err, es.ErrNotFound):
		default:
			return agg, head, fmt.Errorf("load %s %s: %w", h.kind.AggregateType, id, err)
		}
	}
	if !restored {
		agg = h.kind.New(id)
	}
	head, err = s.store.Load(ctx, id, agg.Version()+1, func(env es.Envelope) error { return es.ApplyEnvelope(agg, env) })
	if err != nil {
		return agg, head, fmt.Errorf("load %s %s: %w", h.kind.AggregateType, id, err)
	}
	return agg, head, nil
}

// restore rebuilds the aggregate from a snapshot, checking it is of the expected kind.
func (h *Handler[A, C]) restore(snap es.Snapshot) (A, error) {
	var zero A
	if snap.AggregateType != "" && snap.AggregateType != h.kind.AggregateType {
		return zero, fmt.Errorf("snapshot of a %s, want %s", snap.AggregateType, h.kind.AggregateType)
	}
	a, err := h.kind.Snapshots.Restore(snap)
	if err != nil {
		return zero, err
	}
	typed, ok := a.(A)
	if !ok {
		return zero, fmt.Errorf("snapshot restored a %T, want %T", a, zero)
	}
	if typed.AggregateID() != snap.AggregateID || typed.Version() != snap.Version {
		return zero, fmt.Errorf("snapshot restored %s at version %d, want %s at %d",
			typed.AggregateID(), typed.Version(), snap.AggregateID, snap.Version)
	}
	return typed, nil
}

// firstOutcome rebuilds the result of a command recorded in the stream head.
func (h *Handler[A, C]) firstOutcome(ctx context.Context, id string, rec es.CommandRecord) (Result, error) {
	envs, err := h.svc.store.LoadRange(ctx, id, rec.FirstSequence, rec.LastSequence)
	if err != nil {
		return Result{}, fmt.Errorf("load first outcome of a repeated command on %s: %w", id, err)
	}
	if want := rec.LastSequence - rec.FirstSequence + 1; int64(len(envs)) != want {
		return Result{}, fmt.Errorf("first outcome of a repeated command on %s: %d events at %d..%d, want %d",
			id, len(envs), rec.FirstSequence, rec.LastSequence, want)
	}
	res := Result{AggregateID: id, Version: rec.LastSequence, Duplicate: true}
	for _, e := range envs {
		res.EventIDs = append(res.EventIDs, e.EventID)
	}
	return res, nil
}

// snapshotLater encodes the aggregate and writes the snapshot in the background, best effort.
// The caller holds the aggregate's lock.
func (h *Handler[A, C]) snapshotLater(ctx context.Context, agg A) {
	s := h.svc
	codec := h.kind.Snapshots
	// Encoded now: the aggregate may change (in the cache) as soon as the caller unlocks it.
	snap := es.Snapshot{
		AggregateID:   agg.AggregateID(),
		AggregateType: h.kind.AggregateType,
		Version:       agg.Version(),
		SchemaVersion: codec.SchemaVersion(),
		TakenAt:       s.opts.Now().UTC(),
	}
	state, err := codec.Take(agg)
	if err != nil {
		s.opts.Logger.WarnContext(ctx, "snapshot failed", "aggregate_type", h.kind.AggregateType,
			"aggregate_id", snap.AggregateID, "version", snap.Version, "err", err)
		s.opts.Metrics.snapshot.WithLabelValues(h.kind.AggregateType, "error").Inc()
		return
	}
	snap.State = state
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.SnapshotTimeout)
		defer cancel()
		result := "ok"
		if err := s.store.SaveSnapshot(ctx, snap); err != nil {
			result = "error"
			s.opts.Logger.WarnContext(ctx, "snapshot failed", "aggregate_type", h.kind.AggregateType,
				"aggregate_id", snap.AggregateID, "version", snap.Version, "err", err)
		}
		s.opts.Metrics.snapshot.WithLabelValues(h.kind.AggregateType, result).Inc()
	}()
}

// endSpan records err on the span and ends it.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
