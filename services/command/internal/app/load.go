package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordersys/ordersys/pkg/es"
)

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
				s.cache.put(key, agg, head.Commands)
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
		s.cache.put(key, agg, head.Commands)
	}
	return agg, head, err
}

// load reads the aggregate from the store in one round trip: the newest snapshot beside the
// stream's last events (es.SnapshotTail of them, es.EventStore.LoadLast). Most aggregates are
// shorter than that and have no snapshot: the events are all of them. One with a snapshot has
// at most the interval plus one append's events after it: those are among the last ones. Only
// when they are not (a snapshot missed or unreadable, snapshots turned on late) or the snapshot
// is newer than the head read beside it (an append and its snapshot landed between the two
// reads) are the events after the snapshot read next, as a second round trip.
func (h *Handler[A, C]) load(ctx context.Context, id string) (agg A, head es.StreamHead, err error) {
	s := h.svc
	ctx, span := s.tracer.Start(ctx, "load "+h.kind.AggregateType, trace.WithAttributes(attribute.String("ordersys.aggregate_id", id)))
	defer func() {
		if err == nil {
			span.SetAttributes(attribute.Int64("ordersys.version", agg.Version()))
		}
		endSpan(span, err)
	}()
	if h.kind.Snapshots == nil || s.opts.SnapshotEvery <= 0 {
		// No snapshots, or none taken any more (an older one may still be there: read first).
		agg, err = h.snapshot(ctx, id, span)
		if err != nil {
			return agg, head, err
		}
		head, err = h.replay(ctx, id, agg)
		return agg, head, err
	}

	type tail struct {
		events []es.Envelope
		head   es.StreamHead
		err    error
	}
	last := make(chan tail, 1)
	go func() {
		var t tail
		defer func() {
			if p := recover(); p != nil { // in the caller's goroutine it would have reached the server's recovery
				t.err = fmt.Errorf("read panicked: %v", p)
			}
			last <- t
		}()
		t.events, t.head, t.err = s.store.LoadLast(ctx, id, es.SnapshotTail(s.opts.SnapshotEvery))
	}()
	agg, err = h.snapshot(ctx, id, span)
	t := <-last
	switch {
	case err != nil:
		return agg, head, err
	case t.err != nil:
		return agg, head, fmt.Errorf("load %s %s: %w", h.kind.AggregateType, id, t.err)
	}
	from := agg.Version() + 1
	if agg.Version() > t.head.Version || (len(t.events) > 0 && t.events[0].Sequence > from) {
		head, err = h.replay(ctx, id, agg)
		return agg, head, err
	}
	for _, env := range t.events {
		if env.Sequence < from {
			continue
		}
		if err := h.apply(agg, env); err != nil {
			return agg, head, fmt.Errorf("load %s %s: %w", h.kind.AggregateType, id, err)
		}
	}
	return agg, t.head, nil
}

// snapshot returns the aggregate restored from its newest usable snapshot, or at version 0
// when it has none (or snapshots are off for its kind).
func (h *Handler[A, C]) snapshot(ctx context.Context, id string, span trace.Span) (A, error) {
	s := h.svc
	if h.kind.Snapshots == nil {
		return h.kind.New(id), nil
	}
	snap, err := s.store.LatestSnapshot(ctx, id, 0)
	switch {
	case errors.Is(err, es.ErrNotFound):
		return h.kind.New(id), nil
	case err != nil:
		return h.kind.New(id), fmt.Errorf("load %s %s: %w", h.kind.AggregateType, id, err)
	}
	a, err := h.restore(snap)
	if err != nil {
		s.opts.Logger.WarnContext(ctx, "snapshot unusable, replaying every event", "aggregate_id", id,
			"snapshot_version", snap.Version, "err", err)
		return h.kind.New(id), nil
	}
	span.SetAttributes(attribute.Int64("ordersys.snapshot_version", snap.Version))
	return a, nil
}

// replay applies to agg the events after its version, to the end of the stream.
func (h *Handler[A, C]) replay(ctx context.Context, id string, agg A) (es.StreamHead, error) {
	head, err := h.svc.store.Load(ctx, id, agg.Version()+1, func(env es.Envelope) error { return h.apply(agg, env) })
	if err != nil {
		return head, fmt.Errorf("load %s %s: %w", h.kind.AggregateType, id, err)
	}
	return head, nil
}

// apply applies one loaded event to agg, refusing an event of another kind of aggregate.
func (h *Handler[A, C]) apply(agg A, env es.Envelope) error {
	if env.AggregateType != "" && env.AggregateType != h.kind.AggregateType {
		return otherKind(h.kind.AggregateType, env.AggregateType)
	}
	return es.ApplyEnvelope(agg, env)
}

// otherKind is the error of a command whose aggregate id already names an aggregate of another
// kind (an order's id given as a customer's): bad input, in the field of the command's id.
func otherKind(want, got string) error {
	return es.Invalid(strings.ToLower(want)+"_id", fmt.Sprintf("names an aggregate of kind %s, not %s", got, want))
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
