package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/ordersys/ordersys/pkg/es"
)

// attemptOnCache decides the command on the aggregate's cached state, without reading the
// store, and appends; done is false when the attempt must go on with a read: the aggregate is
// not cached, the command id is already recorded, the cached state refused the command (it may
// be stale: the refusal is decided again, and remembered, on the state read), or the append's
// condition failed (another replica appended, or recorded this command id). The caller holds
// the aggregate's lock.
func (h *Handler[A, C]) attemptOnCache(ctx context.Context, req Request[C], meta es.Metadata) (res Result, done bool, err error) {
	cached, commands, ok := h.svc.cache.entry(h.cacheKey(req.AggregateID))
	if !ok {
		return Result{}, false, nil
	}
	agg, ok := cached.(A)
	if !ok || agg.Version() == 0 {
		return Result{}, false, nil
	}
	if _, seen := commands[req.CommandID]; seen && req.CommandID != "" {
		return Result{}, false, nil
	}
	count := h.svc.opts.Metrics.cached
	cmd, err := h.prepare(ctx, req.Command)
	if err != nil {
		count.WithLabelValues(req.Name, cachedRefused).Inc()
		return Result{}, false, nil
	}
	res, decided, err := h.decideAndAppend(ctx, req, cmd, meta, agg, commands, true)
	switch {
	case err == nil && len(res.EventIDs) == 0:
		// Nothing to append, so nothing checked the cached state: read it.
		count.WithLabelValues(req.Name, cachedRefused).Inc()
		return Result{}, false, nil
	case err == nil:
		count.WithLabelValues(req.Name, cachedAppended).Inc()
		return res, true, nil
	case !decided:
		count.WithLabelValues(req.Name, cachedRefused).Inc()
		return Result{}, false, nil
	case errors.Is(err, es.ErrConcurrencyConflict):
		count.WithLabelValues(req.Name, cachedStale).Inc()
		return Result{}, false, nil
	default:
		// The append failed otherwise (unavailable, outcome unknown): deciding again could
		// append the command twice when it carries no id.
		return Result{}, true, err
	}
}

// cacheRecord caches agg with the stream's recorded command ids, plus id's record (when id is
// set) and minus the forgotten ids.
func (h *Handler[A, C]) cacheRecord(aggregateID string, agg A, commands map[string]es.CommandRecord, id string, rec es.CommandRecord, forget []string) {
	if commands == nil {
		commands = map[string]es.CommandRecord{}
	}
	for _, f := range forget {
		delete(commands, f)
	}
	if id != "" {
		commands[id] = rec
	}
	h.svc.cache.put(h.cacheKey(aggregateID), agg, commands)
}

// repeated answers a command whose id is recorded: its first outcome, or its first rejection;
// a different command under the same id fails with es.ErrCommandIDReused.
func (h *Handler[A, C]) repeated(ctx context.Context, req Request[C], rec es.CommandRecord) (Result, error) {
	if rec.Fingerprint != req.Fingerprint {
		return Result{}, fmt.Errorf("%s %s: command %s: %w", req.Name, req.AggregateID, req.CommandID, es.ErrCommandIDReused)
	}
	if rec.Rejected {
		return Result{}, &es.RuleError{Rule: rec.Rule, Reason: rec.Reason}
	}
	return h.firstOutcome(ctx, req.AggregateID, rec)
}

// recorded answers a command whose append found its id recorded by another writer since the
// aggregate was read.
func (h *Handler[A, C]) recorded(ctx context.Context, req Request[C], expected int64) (Result, bool, error) {
	head, err := h.svc.store.Head(ctx, req.AggregateID)
	if err != nil {
		return Result{}, false, fmt.Errorf("%s %s: read the first outcome of command %s: %w", req.Name, req.AggregateID, req.CommandID, err)
	}
	rec, ok := head.Commands[req.CommandID]
	if !ok {
		// Recorded at the append and gone since (expired or forgotten): retry as a new command.
		return Result{}, true, &es.ConflictError{AggregateID: req.AggregateID, Expected: expected, Actual: head.Version}
	}
	res, err := h.repeated(ctx, req, rec)
	return res, false, err
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
