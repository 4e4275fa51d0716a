package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ordersys/ordersys/pkg/readmodel"
)

// RebuildSource says where a rebuild reads the history from.
type RebuildSource string

// The rebuild sources.
const (
	// SourceTopics replays the event topics from their first offset (the API's default; the
	// CLIs default to SourceEventStore, as topics keep 7 days by default).
	SourceTopics RebuildSource = "topics"
	// SourceEventStore walks the event store by token ranges (no topic needed for the past;
	// the topics carry only what arrives during the rebuild).
	SourceEventStore RebuildSource = "store"
)

// ParseRebuildSource reads a source name: "topics", "store" (or "event-store"), "" = topics.
func ParseRebuildSource(s string) (RebuildSource, error) {
	switch s {
	case "", string(SourceTopics):
		return SourceTopics, nil
	case string(SourceEventStore), "event-store", "event_store":
		return SourceEventStore, nil
	}
	return "", fmt.Errorf("unknown rebuild source %q (want %s or %s)", s, SourceTopics, SourceEventStore)
}

// Rebuild phases (RebuildProgress.Phase).
const (
	// PhaseWalking: a rebuild from the event store walks its aggregates.
	PhaseWalking = "walking"
	// PhaseCatchingUp: the new version's consumer group works off its lag on the topics.
	PhaseCatchingUp = "catching_up"
	// PhaseSwitched: readers were moved to the new version (the last report).
	PhaseSwitched = "switched"
)

// RebuildOptions tune Rebuild.
type RebuildOptions struct {
	// Source is where the history is read from (default SourceTopics).
	Source RebuildSource
	// Poll is how often the new version's lag is checked (default 1s).
	Poll time.Duration
	// MaxLag is the number of unprocessed messages at or below which the new version counts as
	// caught up (default 0: every message published so far).
	MaxLag int64
	// Linger keeps the rebuild's own consumer running this long after the switch, so the new
	// version stays current until running projectors (which follow projection_versions) have
	// taken it over (default 5s).
	Linger time.Duration
	// PageSize is how many aggregates a page of the event-store walk lists, the unit of its
	// saved position and of progress reports (default 100).
	PageSize int
	// Workers is how many aggregates of a page the event-store walk projects at once (default 8).
	Workers int
	// Progress, when set, receives each measurement: after every page of the walk and every
	// lag poll, and once more when readers were switched.
	Progress func(RebuildProgress)
}

// RebuildProgress is one measurement of a rebuild.
type RebuildProgress struct {
	// Projection and Version name what is being built.
	Projection string
	Version    int
	// Source is where the history is read from; Phase one of the Phase constants.
	Source RebuildSource
	Phase  string
	// Aggregates and Events are what the event-store walk projected so far in this run;
	// Skipped the aggregates it could not project (logged, see docs/read-models.md).
	Aggregates, Events, Skipped int64
	// Fraction is the share of the token ring walked (0 to 1; 1 once the walk is done, and for
	// a rebuild from the topics).
	Fraction float64
	// Rate is the walk's events per second in this run, ETA its estimated time left.
	Rate float64
	ETA  time.Duration
	// Lag is the number of messages the new version has not processed yet (measured in the
	// catching-up phase).
	Lag int64
	// Partitions holds the lag per partition.
	Partitions []PartitionLag
	// Switched is set on the last report, once readers were moved to the new version.
	Switched bool
}

// String renders the report as one progress line.
func (p RebuildProgress) String() string {
	switch p.Phase {
	case PhaseSwitched:
		return fmt.Sprintf("%s v%d caught up: readers switched to it", p.Projection, p.Version)
	case PhaseWalking:
		return fmt.Sprintf("%s v%d: event store %5.1f%%  %d aggregates  %d events  %d skipped  %.0f events/s  ETA %s",
			p.Projection, p.Version, 100*p.Fraction, p.Aggregates, p.Events, p.Skipped, p.Rate, p.ETA)
	}
	return fmt.Sprintf("%s v%d: %d messages to go", p.Projection, p.Version, p.Lag)
}

// Rebuild replays a projection into a fresh version of its tables and switches readers to it
// once it has caught up, with no downtime: readers keep using the active version meanwhile, and
// running projectors keep it current.
//
//  1. readmodel.BeginRebuild allocates version N, creates its tables and records it as building
//     (or resumes the version a previous, interrupted rebuild was building);
//  2. from the topics (SourceTopics): a consumer of group <base>.<projection>.vN replays the
//     topics from their first offset into version N (running projectors see the building
//     version and join the same group, sharing the partitions); a gap, such as events no longer
//     retained in the topic, is healed from the event store, so a compacted topic holding each
//     aggregate's latest event is enough;
//     from the event store (SourceEventStore): before N is recorded as building, its group's
//     offsets are set to the end of the topics; the walk then reads every aggregate's events
//     from the event store and projects them into N, while the group (this process and running
//     projectors) projects what arrives meanwhile (see rebuildFromStore);
//  3. once the group's lag is at most MaxLag on two polls in a row, readmodel.Switch makes N
//     active; the former version stays written for Config.RetireGrace, then its consumers stop.
//
// It returns the new version.
func Rebuild(ctx context.Context, cfg Config, d Deps, projection string, opts RebuildOptions) (int, error) {
	cfg = cfg.withDefaults()
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Linger <= 0 {
		opts.Linger = 5 * time.Second
	}
	if opts.Source == "" {
		opts.Source = SourceTopics
	}
	if _, err := readmodel.ProjectionTables(projection); err != nil {
		return 0, err
	}
	walker, _ := d.Events.(EventStoreWalker)
	var prepare func(context.Context, int) error
	switch opts.Source {
	case SourceTopics:
	case SourceEventStore:
		if walker == nil {
			return 0, fmt.Errorf("rebuild %s from the event store: the event source (%T) cannot be walked", projection, d.Events)
		}
		prepare = func(ctx context.Context, v int) error {
			return prepareStoreRebuild(ctx, cfg, d.Groups, walker, projection, v)
		}
	default:
		return 0, fmt.Errorf("rebuild %s: unknown source %q", projection, opts.Source)
	}
	v, resumed, err := d.Versions.BeginRebuild(ctx, projection, prepare)
	if err != nil {
		return 0, fmt.Errorf("rebuild %s: %w", projection, err)
	}
	d.Logger.Info("rebuild started", "projection", projection, "version", v, "resumed", resumed, "source", opts.Source)
	if resumed && opts.Source == SourceTopics && walker != nil {
		// A version begun from the event store has its group positioned at the end of the
		// topics: replaying them would not rebuild its past.
		pos, ok, err := walker.WalkPosition(ctx, walkCheckpoint(projection, v))
		if err != nil {
			return v, fmt.Errorf("rebuild %s v%d: %w", projection, v, err)
		}
		if ok && !walkFinished(pos) {
			return v, fmt.Errorf("rebuild %s v%d: %w: it was started from the event store and its walk is not finished; resume it with source %s, or abort it",
				projection, v, readmodel.ErrRebuildConflict, SourceEventStore)
		}
	}

	run, err := projectionConsumer(cfg, d, projection, v)
	if err != nil {
		return 0, err
	}
	cctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = run(cctx)
	}()
	defer func() {
		stop()
		<-done
	}()

	last := RebuildProgress{Projection: projection, Version: v, Source: opts.Source, Phase: PhaseCatchingUp, Fraction: 1}
	if opts.Source == SourceEventStore {
		h, err := NewHandler(d, projection, v)
		if err != nil {
			return v, err
		}
		last, err = rebuildFromStore(ctx, d, walker, h, projection, v, opts)
		if err != nil {
			return v, err
		}
		last.Phase = PhaseCatchingUp
	}
	return v, switchWhenCaughtUp(ctx, cfg, d, opts, last)
}

// liveLag returns the lag of the projection's active version (0 when it cannot be measured, so
// that the switch waits for MaxLag alone).
func liveLag(ctx context.Context, cfg Config, d Deps, projection string) int64 {
	vs, err := d.Versions.Load(ctx, projection)
	if err != nil {
		return 0
	}
	parts, err := d.Groups.Lag(ctx, GroupID(cfg.GroupBase, projection, vs.Active), cfg.Topics(projection))
	if err != nil {
		return 0
	}
	return TotalLag(parts)
}

// switchWhenCaughtUp polls the new version's lag and switches readers to it once the lag is at
// most opts.MaxLag, or at most the active version's own lag (readers then see the new version as
// fresh as the one they leave), on two polls in a row. Under steady traffic the lag is seldom 0
// at the moment of a poll: waiting for 0 never switched.
func switchWhenCaughtUp(ctx context.Context, cfg Config, d Deps, opts RebuildOptions, p RebuildProgress) error {
	projection, v := p.Projection, p.Version
	group := GroupID(cfg.GroupBase, projection, v)
	caughtUp := 0
	t := time.NewTicker(opts.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("rebuild %s v%d interrupted (run it again to resume): %w", projection, v, ctx.Err())
		case <-t.C:
		}
		parts, err := d.Groups.Lag(ctx, group, cfg.Topics(projection))
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			d.Logger.Warn("measure rebuild lag", "projection", projection, "version", v, "err", err)
			continue
		}
		p.Lag, p.Partitions = TotalLag(parts), parts
		if opts.Progress != nil {
			opts.Progress(p)
		}
		d.Logger.Info("rebuild progress", "projection", projection, "version", v, "lag", p.Lag)
		if p.Lag > opts.MaxLag && p.Lag > liveLag(ctx, cfg, d, projection) { // the live lag only when needed
			caughtUp = 0
			continue
		}
		if caughtUp++; caughtUp < 2 {
			continue
		}
		if err := d.Versions.Switch(ctx, projection, v); err != nil {
			if errors.Is(err, readmodel.ErrRebuildConflict) {
				return fmt.Errorf("rebuild %s v%d: %w", projection, v, err)
			}
			d.Logger.Warn("switch versions", "projection", projection, "version", v, "err", err)
			continue
		}
		d.Logger.Info("readers switched to the rebuilt version", "projection", projection, "version", v)
		if opts.Progress != nil {
			p.Phase, p.Switched = PhaseSwitched, true
			opts.Progress(p)
		}
		select {
		case <-ctx.Done():
		case <-time.After(opts.Linger):
		}
		return nil
	}
}
