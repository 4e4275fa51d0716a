package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/telemetry"
)

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
		// Checked first: the line's arguments cost allocations even when it is dropped.
		if s.opts.Logger.Enabled(ctx, slog.LevelDebug) {
			s.opts.Logger.DebugContext(ctx, "command", "command", req.Name, "aggregate_id", req.AggregateID,
				"command_id", req.CommandID, "correlation_id", req.Meta.CorrelationID, "outcome", outcome,
				"version", res.Version, "duration", d, "err", err)
		}
	}()

	causation := req.CommandID
	if causation == "" {
		causation = s.opts.NewID()
	}
	// The caller's span (the gRPC server span) carries the ids that find this command's trace.
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		attrs := [4]attribute.KeyValue{
			attribute.String(SpanAttrCorrelationID, req.Meta.CorrelationID),
			attribute.String(SpanAttrAggregateID, req.AggregateID),
			attribute.String(SpanAttrCausationID, causation),
		}
		n := 3
		if req.CommandID != "" {
			attrs[n] = attribute.String(SpanAttrCommandID, req.CommandID)
			n++
		}
		span.SetAttributes(attrs[:n]...)
	}
	traceparent, tracestate := telemetry.TraceContextFromContext(ctx)
	meta := es.Metadata{
		CausationID:   causation,
		CorrelationID: req.Meta.CorrelationID,
		UserID:        req.Meta.UserID,
		TraceParent:   traceparent,
		TraceState:    tracestate,
		Extra:         map[string]string{"command": req.Name},
	}

	var bo *backoff.ExponentialBackOff // made at the first retry: most commands need none
	for attempt := 0; ; attempt++ {
		var retry bool
		res, retry, err = h.attempt(ctx, req, meta, attempt == 0)
		if !retry || attempt >= s.opts.MaxRetries {
			res.CorrelationID = req.Meta.CorrelationID
			return res, err
		}
		s.opts.Metrics.retries.WithLabelValues(req.Name).Inc()
		if bo == nil {
			bo = &backoff.ExponentialBackOff{
				InitialInterval:     s.opts.RetryBackoff,
				RandomizationFactor: 0.5,
				Multiplier:          1.5,
				MaxInterval:         s.opts.MaxRetryBackoff,
			}
			bo.Reset()
		}
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
//
// With trustCache (Execute's first attempt) and no expected version, a command on a cached
// aggregate is decided on the cached state without reading the store: the append's condition
// (the store still at the cached version, the command id unrecorded) checks what the read
// would have. When it fails (another replica appended, or recorded this command id), or the
// cached state refuses the command, the attempt goes on as without the cache: it reads the
// aggregate, then decides, dedupes and remembers rejections on what it read.
func (h *Handler[A, C]) attempt(ctx context.Context, req Request[C], meta es.Metadata, trustCache bool) (res Result, retry bool, err error) {
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
	if trustCache && req.ExpectedVersion == nil {
		if res, done, err := h.attemptOnCache(ctx, req, meta); done {
			return res, false, err
		}
		if res, done, err := h.attemptAsNew(ctx, req, meta); done {
			return res, false, err
		}
	}
	agg, head, rej, err := h.loadForCommand(ctx, req)
	if err != nil {
		return Result{}, false, err
	}

	// A repeated command id: the first outcome, or the first rejection.
	if req.CommandID != "" {
		if rec, ok := head.Commands[req.CommandID]; ok {
			res, err := h.repeated(ctx, req, rec)
			return res, false, err
		}
		if rej != nil {
			res, err := h.repeated(ctx, req, es.CommandRecord{Fingerprint: rej.Fingerprint, Rejected: true, Rule: rej.Rule, Reason: rej.Reason})
			return res, false, err
		}
	}

	before := agg.Version()
	if req.ExpectedVersion != nil && *req.ExpectedVersion != before {
		return Result{}, false, &es.ConflictError{AggregateID: req.AggregateID, Expected: *req.ExpectedVersion, Actual: before}
	}
	cmd, err := h.prepare(ctx, req.Command)
	if err != nil {
		return Result{}, false, err
	}
	res, _, err = h.decideAndAppend(ctx, req, cmd, meta, agg, head.Commands, false)
	var ce *es.ConflictError
	switch {
	case errors.As(err, &ce) && ce.CommandRecorded:
		// Recorded since the read (by another replica): its first outcome stands.
		return h.recorded(ctx, req, before)
	case err != nil:
		lost := errors.Is(err, es.ErrConcurrencyConflict) || (before == 0 && errors.Is(err, es.ErrAlreadyExists))
		if lost {
			s.opts.Metrics.conflict.WithLabelValues(req.Name).Inc()
		}
		return Result{}, lost && req.ExpectedVersion == nil, err
	}
	return res, false, nil
}

// prepare completes the command with what Decide needs from outside its aggregate
// (Kind.Prepare).
func (h *Handler[A, C]) prepare(ctx context.Context, cmd C) (C, error) {
	if h.kind.Prepare == nil {
		return cmd, nil
	}
	return h.kind.Prepare(ctx, cmd)
}

// decideAndAppend decides cmd, the request's command prepared, on agg (with the stream's
// recorded command ids) and appends the events; decided reports that the command was decided
// (an error then is the append's). onCache marks a decision on a state that was not read for
// this command (cached, or presumed new): a rule refusal is then not remembered (the caller
// decides again on the state it reads).
func (h *Handler[A, C]) decideAndAppend(ctx context.Context, req Request[C], cmd C, meta es.Metadata, agg A,
	commands map[string]es.CommandRecord, onCache bool) (res Result, decided bool, err error) {
	s := h.svc
	before := agg.Version()
	now := s.opts.Now().UTC().Truncate(time.Millisecond)
	_, span := s.tracer.Start(ctx, "decide "+req.Name, trace.WithAttributes(
		attribute.String("ordersys.aggregate_id", req.AggregateID), attribute.Int64("ordersys.version", before),
		attribute.Bool("ordersys.cached_state", onCache)))
	events, err := agg.Decide(cmd, now)
	endSpan(span, err)
	if err != nil {
		var re *es.RuleError
		// A refusal about another aggregate (Subject set, e.g. the order's customer) is not
		// remembered: it may be lifted without this aggregate changing, and a retry of the same
		// command id must then be decided again.
		if !onCache && errors.As(err, &re) && re.Subject == "" && req.CommandID != "" && s.opts.Rejections != nil {
			r := es.Rejection{Fingerprint: req.Fingerprint, Rule: re.Rule, Reason: re.Reason, Version: before}
			if before > 0 {
				r.Forget = es.CommandsToForget(commands, s.opts.MaxRememberedCommands)
			}
			var ce *es.ConflictError
			switch rerr := s.opts.Rejections.Remember(ctx, req.AggregateID, req.CommandID, r); {
			case errors.As(rerr, &ce) && ce.CommandRecorded:
				return Result{}, false, rerr // the first outcome, recorded meanwhile, stands
			case rerr != nil:
				s.opts.Logger.WarnContext(ctx, "remember rejected command", "aggregate_id", req.AggregateID,
					"command_id", req.CommandID, "err", rerr)
			case before > 0:
				h.cacheRecord(req.AggregateID, agg, commands, req.CommandID, es.CommandRecord{Fingerprint: req.Fingerprint,
					FirstSequence: before, LastSequence: before, Rejected: true, Rule: re.Rule, Reason: re.Reason}, r.Forget)
			}
		}
		return Result{}, false, err
	}
	if len(events) == 0 {
		return Result{AggregateID: req.AggregateID, Version: before, EventIDs: []string{}}, true, nil
	}

	envs := es.NewEnvelopes(agg, events, meta, now, s.opts.NewID)
	var forget []string
	if req.CommandID != "" {
		forget = es.CommandsToForget(commands, s.opts.MaxRememberedCommands)
	}
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
		ForgetCommands:     forget,
	})
	s.opts.Metrics.observeAppend(h.kind.AggregateType, err, time.Since(t0))
	endSpan(span, err)
	if err != nil {
		return Result{}, true, err
	}

	// Bring the state to the new version, for the cache and the snapshot.
	if err := es.Replay(agg, envs); err != nil {
		s.cache.remove(h.cacheKey(req.AggregateID))
		s.opts.Logger.WarnContext(ctx, "apply own events", "aggregate_id", req.AggregateID, "err", err)
	} else {
		var rec es.CommandRecord
		if req.CommandID != "" {
			rec = es.CommandRecord{Fingerprint: req.Fingerprint, FirstSequence: before + 1, LastSequence: out.Version}
		}
		h.cacheRecord(req.AggregateID, agg, commands, req.CommandID, rec, forget) // already cached unless just created
		if es.SnapshotDue(before, out.Version, s.opts.SnapshotEvery) && h.kind.Snapshots != nil {
			h.snapshotLater(ctx, agg)
		}
	}
	return Result{AggregateID: req.AggregateID, Version: out.Version, EventIDs: out.EventIDs}, true, nil
}

// checkExpectedVersion fails fast, without queueing behind the aggregate's other commands,
// when the stream head shows the aggregate is not at the client's expected version and the
// command id is neither recorded nor remembered as rejected (those return the first outcome).
// A nil error means: go on, the full check follows under the aggregate's lock; unseen then
// reports that the head was read, at the expected version, without a record of the command id
// or a remembered rejection.
func (h *Handler[A, C]) checkExpectedVersion(ctx context.Context, req Request[C]) (unseen bool, err error) {
	recall := h.recallBeside(ctx, req)
	head, err := h.svc.store.Head(ctx, req.AggregateID)
	if rc := recall(); err != nil || rc.found || rc.err != nil {
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
func (h *Handler[A, C]) loadForCommand(ctx context.Context, req Request[C]) (A, es.StreamHead, *es.Rejection, error) {
	recall := h.recallBeside(ctx, req)
	agg, head, err := h.loadCached(ctx, req.AggregateID)
	rc := recall()
	if err == nil && rc.err != nil {
		err = fmt.Errorf("recall rejection of command %s: %w", req.CommandID, rc.err)
	}
	var rej *es.Rejection
	if rc.found {
		rej = &rc.r
	}
	return agg, head, rej, err
}

// endSpan records err on the span and ends it.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
