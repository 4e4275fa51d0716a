package app

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

// EventStoreWalker is what a rebuild from the event store reads (pkg/cql.EventStore
// implements it): the resumable token-ring walk of the aggregates and each one's stored events.
type EventStoreWalker interface {
	// WalkAggregates calls fn with the aggregates a page at a time, saving the position under
	// checkpoint after each page (cql.EventStore.WalkAggregates).
	WalkAggregates(ctx context.Context, checkpoint string, pageSize int, fn func(cql.WalkPage) error) error
	// WalkPosition and SaveWalkPosition read and write a walk's saved position.
	WalkPosition(ctx context.Context, checkpoint string) (int64, bool, error)
	SaveWalkPosition(ctx context.Context, checkpoint string, pos int64) error
	// LoadRaw returns the aggregate's stored events with from ≤ sequence ≤ to, not decoded.
	LoadRaw(ctx context.Context, aggregateID string, from, to int64) ([]es.Envelope, error)
}

var _ EventStoreWalker = (*cql.EventStore)(nil)

// Defaults of a rebuild from the event store.
const (
	defaultWalkPage    = 100
	defaultWalkWorkers = 8
	// walkChunk is how many events of one aggregate are read and projected at a time (one read
	// and one write of its row per chunk).
	walkChunk = 500
)

// walkCheckpoint names the saved position of the event-store walk into a projection version.
func walkCheckpoint(projection string, v int) string {
	return "projector-rebuild:" + projection + ".v" + strconv.Itoa(v)
}

// walkFinished reports whether a saved walk position is the end of the ring.
func walkFinished(pos int64) bool { return pos == cql.WalkDone }

// prepareStoreRebuild runs before version v is recorded as building, so before any projector
// writes it: it saves the walk's starting position (which also marks v as rebuilt from the
// event store) and commits the offsets of v's consumer group at the current end of the topics.
//
// Why no event is lost: an event with an offset below that end was published, so appended to
// the event store, before the walk starts, and the walk reads it; an event at or after it is
// consumed by v's group (this process and every running projector join it). The two writers
// commute: each write is of a whole aggregate version with a version-derived write timestamp,
// and an event already applied is skipped (docs/read-models.md).
func prepareStoreRebuild(ctx context.Context, cfg Config, groups Groups, walker EventStoreWalker, projection string, v int) error {
	if err := walker.SaveWalkPosition(ctx, walkCheckpoint(projection, v), cql.MinToken); err != nil {
		return err
	}
	return groups.StartAtEnd(ctx, GroupID(cfg.GroupBase, projection, v), cfg.Topics(projection))
}

// rebuildFromStore walks the event store into version v: every aggregate the projection holds,
// its events in sequence order, a chunk at a time through the projection's own handler
// (ProjectStream: the same code as for a message, one row read and write per chunk). Pages of
// aggregates are projected by opts.Workers goroutines; the position is saved after each page,
// so an interrupted rebuild resumes there. Every opts.Poll it checks that v is still the
// version being built (an AbortRebuild stops it). It returns the last progress report.
func rebuildFromStore(ctx context.Context, d Deps, walker EventStoreWalker, h StreamHandler, projection string, v int, opts RebuildOptions) (RebuildProgress, error) {
	w := &storeWalk{d: d, walker: walker, h: h, projection: projection, v: v}
	pageSize := opts.PageSize
	if pageSize <= 0 {
		pageSize = defaultWalkPage
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = defaultWalkWorkers
	}
	start := time.Now()
	p := RebuildProgress{Projection: projection, Version: v, Source: SourceEventStore, Phase: PhaseWalking}
	report := func(fraction, from float64) {
		p.Aggregates, p.Events, p.Skipped = w.aggregates.Load(), w.events.Load(), w.skipped.Load()
		p.Fraction, p.Rate, p.ETA = fraction, 0, 0
		if el := time.Since(start); el > 0 {
			p.Rate = float64(p.Events) / el.Seconds()
			if walked := fraction - from; walked > 0 && fraction < 1 {
				p.ETA = time.Duration(float64(el) * (1 - fraction) / walked).Round(time.Second)
			}
		}
		if opts.Progress != nil {
			opts.Progress(p)
		}
	}
	// An AbortRebuild (or another rebuild step) makes v no longer the version being built: stop
	// then, also in the middle of a page (its writes may fail for good once v's tables are
	// dropped).
	wctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	go watchBuilding(wctx, d, projection, v, opts.Poll, stop)
	if pos, ok, err := walker.WalkPosition(ctx, walkCheckpoint(projection, v)); err == nil && ok && pos != cql.MinToken {
		report(cql.TokenFraction(pos), cql.TokenFraction(pos))
	} else {
		report(0, 0)
	}
	err := walker.WalkAggregates(wctx, walkCheckpoint(projection, v), pageSize, func(page cql.WalkPage) error {
		if err := w.page(wctx, page.IDs, workers); err != nil {
			return err
		}
		report(page.Fraction, page.Start)
		return nil
	})
	if err != nil {
		if cause := context.Cause(wctx); cause != nil && ctx.Err() == nil {
			return p, cause
		}
		if ctx.Err() != nil {
			return p, fmt.Errorf("rebuild %s v%d interrupted (run it again to resume): %w", projection, v, ctx.Err())
		}
		return p, err
	}
	report(1, 0)
	d.Logger.Info("event store walked", "projection", projection, "version", v, "aggregates", p.Aggregates, "events", p.Events, "skipped", p.Skipped)
	return p, nil
}

// watchBuilding checks every poll until ctx ends that v is still the version of the projection
// being built, and calls stop with a readmodel.ErrRebuildConflict when it is not.
func watchBuilding(ctx context.Context, d Deps, projection string, v int, poll time.Duration, stop context.CancelCauseFunc) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		vs, err := d.Versions.Load(ctx, projection)
		if err == nil && vs.Building != v {
			stop(fmt.Errorf("rebuild %s v%d: %w: version %d is no longer being built (building %d, active %d)",
				projection, v, readmodel.ErrRebuildConflict, v, vs.Building, vs.Active))
			return
		}
	}
}

// storeWalk is one run of rebuildFromStore.
type storeWalk struct {
	d          Deps
	walker     EventStoreWalker
	h          StreamHandler
	projection string
	v          int

	aggregates, events, skipped atomic.Int64
}

// page projects the aggregates of one page, workers at a time; the first error stops it.
func (w *storeWalk) page(ctx context.Context, ids []string, workers int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan string)
	var wg sync.WaitGroup
	for range min(workers, len(ids)) {
		wg.Go(func() {
			for id := range next {
				if err := w.aggregate(ctx, id); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for _, id := range ids {
		select {
		case next <- id:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// aggregate projects every stored event of one aggregate, a chunk at a time. An aggregate the
// projection does not hold is passed over; one it cannot project (an event that cannot be
// decoded or applied) is logged and counted as skipped, as the consumer would dead-letter its
// message. Transient failures are retried until ctx ends.
func (w *storeWalk) aggregate(ctx context.Context, id string) error {
	for from := int64(1); ; from += walkChunk {
		n, err := w.chunk(ctx, id, from)
		if reason, ok := IsPoison(err); ok {
			w.skipped.Add(1)
			w.d.Logger.ErrorContext(ctx, "aggregate not rebuilt from the event store", "projection", w.projection, "version", w.v,
				"aggregate_id", id, "from", from, "reason", reason, "err", err)
			return nil
		}
		if err != nil {
			return err
		}
		if n < walkChunk {
			if n >= 0 {
				w.aggregates.Add(1)
			}
			return nil
		}
	}
}

// errForeign marks an aggregate of a type the projection does not hold.
var errForeign = errors.New("not held by the projection")

// chunk projects the events from..from+walkChunk-1 of the aggregate and returns how many there
// were (-1: an aggregate the projection does not hold).
func (w *storeWalk) chunk(ctx context.Context, id string, from int64) (int, error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 100*time.Millisecond, 5*time.Second
	n, err := backoff.Retry(ctx, func() (int, error) {
		envs, err := w.walker.LoadRaw(ctx, id, from, from+walkChunk-1)
		if err != nil {
			return 0, err // the event store is unavailable: transient
		}
		if len(envs) == 0 {
			return 0, nil
		}
		if w.projection == readmodel.ProjectionCustomers && envs[0].AggregateType != customer.AggregateType {
			return -1, backoff.Permanent(errForeign)
		}
		for i := range envs {
			if err := w.d.Registry.DecodeEnvelopeContext(ctx, &envs[i]); err != nil {
				if errors.Is(err, es.ErrUnavailable) {
					return 0, err // the key store does not answer: transient
				}
				return 0, backoff.Permanent(Poison(ReasonUnknownEvent, fmt.Errorf("%s: %w", envs[i], err)))
			}
		}
		res, err := w.h.ProjectStream(ctx, envs)
		if err = Classify(err); err != nil {
			if _, ok := IsPoison(err); ok {
				return 0, backoff.Permanent(err)
			}
			return 0, err
		}
		w.events.Add(int64(len(envs)))
		if w.d.Applied != nil {
			for _, t := range res.Applied {
				w.d.Applied.AddApplied(w.projection, w.v, t)
			}
		}
		return len(envs), nil
	}, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(0), backoff.WithNotify(func(err error, next time.Duration) {
		w.d.Logger.WarnContext(ctx, "rebuild from the event store failed, retrying", "projection", w.projection, "version", w.v,
			"aggregate_id", id, "from", from, "retry_in", next, "err", err)
	}))
	if errors.Is(err, errForeign) {
		return -1, nil
	}
	return n, err
}
