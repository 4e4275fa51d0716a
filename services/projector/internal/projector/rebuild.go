package projector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ordersys/ordersys/pkg/readmodel"
)

// RebuildOptions tune Rebuild.
type RebuildOptions struct {
	// Poll is how often the new version's lag is checked (default 1s).
	Poll time.Duration
	// MaxLag is the number of unprocessed messages at or below which the new version counts as
	// caught up (default 0: every message published so far).
	MaxLag int64
	// Linger keeps the rebuild's own consumer running this long after the switch, so the new
	// version stays current until running projectors (which follow projection_versions) have
	// taken it over (default 5s).
	Linger time.Duration
	// Progress, when set, receives each lag measurement.
	Progress func(RebuildProgress)
}

// RebuildProgress is one measurement of a rebuild.
type RebuildProgress struct {
	// Projection and Version name what is being built.
	Projection string
	Version    int
	// Lag is the number of messages the new version has not processed yet.
	Lag int64
	// Partitions holds the lag per partition.
	Partitions []PartitionLag
	// Switched is set on the last report, once readers were moved to the new version.
	Switched bool
}

// Rebuild replays a projection into a fresh version of its tables and switches readers to it
// once it has caught up, with no downtime: readers keep using the active version meanwhile, and
// running projectors keep it current.
//
//  1. readmodel.BeginRebuild allocates version N, creates its tables and records it as building
//     (or resumes the version a previous, interrupted rebuild was building);
//  2. a consumer of group <base>.<projection>.vN replays the topics from their first offset into
//     version N (running projectors see the building version and join the same group, sharing
//     the partitions); a gap, such as events no longer retained in the topic, is healed from the
//     event store, so a compacted topic holding each aggregate's latest event is enough;
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
	if _, err := readmodel.ProjectionTables(projection); err != nil {
		return 0, err
	}
	v, resumed, err := readmodel.BeginRebuild(ctx, d.Session, projection)
	if err != nil {
		return 0, fmt.Errorf("rebuild %s: %w", projection, err)
	}
	d.Logger.Info("rebuild started", "projection", projection, "version", v, "resumed", resumed)

	c, err := NewProjectionConsumer(cfg, d, projection, v)
	if err != nil {
		return 0, err
	}
	cctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(cctx)
	}()
	defer func() {
		stop()
		<-done
	}()

	group := GroupID(cfg.GroupBase, projection, v)
	caughtUp := 0
	t := time.NewTicker(opts.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("rebuild %s v%d interrupted (run it again to resume): %w", projection, v, ctx.Err())
		case <-t.C:
		}
		parts, err := GroupLag(ctx, cfg.Kafka, group, cfg.Topics(projection))
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			d.Logger.Warn("measure rebuild lag", "projection", projection, "version", v, "err", err)
			continue
		}
		lag := TotalLag(parts)
		if opts.Progress != nil {
			opts.Progress(RebuildProgress{Projection: projection, Version: v, Lag: lag, Partitions: parts})
		}
		d.Logger.Info("rebuild progress", "projection", projection, "version", v, "lag", lag)
		if lag > opts.MaxLag {
			caughtUp = 0
			continue
		}
		if caughtUp++; caughtUp < 2 {
			continue
		}
		if err := readmodel.Switch(ctx, d.Session, projection, v); err != nil {
			if errors.Is(err, readmodel.ErrRebuildConflict) {
				return v, fmt.Errorf("rebuild %s v%d: %w", projection, v, err)
			}
			d.Logger.Warn("switch versions", "projection", projection, "version", v, "err", err)
			continue
		}
		d.Logger.Info("readers switched to the rebuilt version", "projection", projection, "version", v)
		if opts.Progress != nil {
			opts.Progress(RebuildProgress{Projection: projection, Version: v, Lag: lag, Partitions: parts, Switched: true})
		}
		select {
		case <-ctx.Done():
		case <-time.After(opts.Linger):
		}
		return v, nil
	}
}
