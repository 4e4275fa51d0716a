package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

// Admin holds the use cases of the projector's admin service: the projections' versions,
// starting, watching and aborting a rebuild, switching back and dropping versions (the dead
// letters are pkg/deadletter's).
type Admin struct {
	versions VersionStore
	rebuilds *Rebuilds
	progress *progressMeter // nil: no position, lag or rate in the status
}

// NewAdmin returns the admin use cases on the projections' versions.
func NewAdmin(versions VersionStore) *Admin {
	return &Admin{versions: versions}
}

// WithRebuilds lets the admin start and watch rebuilds with r (without it StartRebuild and
// WatchRebuild are refused); r's configuration also gives SwitchBack and DropVersion the retire
// grace and polling interval of the projectors.
func (a *Admin) WithRebuilds(r *Rebuilds) *Admin {
	a.rebuilds = r
	return a
}

// MeasureProgress makes Status report each projection version's position, lag and rate
// (consumer groups of cfg, read through groups), sampling every interval until ctx ends.
func (a *Admin) MeasureProgress(ctx context.Context, cfg Config, groups Groups, every time.Duration) *Admin {
	a.progress = newProgressMeter(cfg.withDefaults(), groups)
	go a.progress.run(ctx, a.versions, every)
	return a
}

// ProjectionStatus is the versions of a projection and, when measured, where the consumer
// groups of its active and building versions stand.
type ProjectionStatus struct {
	// Versions are the projection's table versions.
	Versions readmodel.Versions
	// ActiveProgress and BuildingProgress are nil when not measured (or version 0).
	ActiveProgress, BuildingProgress *Progress
}

// Status returns the versions of every projection and, when measured (MeasureProgress), where
// their consumer groups stand.
func (a *Admin) Status(ctx context.Context) ([]ProjectionStatus, error) {
	var out []ProjectionStatus
	for _, p := range readmodel.Projections() {
		v, err := a.versions.Load(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("projection %s: %w: %w", p, es.ErrUnavailable, err)
		}
		st := ProjectionStatus{Versions: v}
		if a.progress != nil {
			// Best effort: the versions are the answer; a broker that does not answer leaves
			// the progress unset.
			st.ActiveProgress, _ = a.progress.measure(ctx, p, v.Active)
			st.BuildingProgress, _ = a.progress.measure(ctx, p, v.Building)
		}
		out = append(out, st)
	}
	return out, nil
}

// ProjectionArg checks a request's projection name.
func ProjectionArg(name string) (string, error) {
	p := strings.TrimSpace(name)
	if _, err := readmodel.ProjectionTables(p); err != nil {
		return "", es.Invalid("projection", fmt.Sprintf("must be one of %s, got %q", strings.Join(readmodel.Projections(), ", "), p))
	}
	return p, nil
}

// AbortRebuild forgets the version a rebuild of the projection is filling and returns it.
func (a *Admin) AbortRebuild(ctx context.Context, projection string) (int, error) {
	p, err := ProjectionArg(projection)
	if err != nil {
		return 0, err
	}
	v, err := a.versions.Load(ctx, p)
	if err != nil {
		return 0, fmt.Errorf("projection %s: %w: %w", p, es.ErrUnavailable, err)
	}
	if v.Building == 0 {
		return 0, &es.RuleError{Rule: "projector.rebuild_running", Subject: p,
			Reason: fmt.Sprintf("no rebuild of %s runs (version %d is active)", p, v.Active)}
	}
	if err := a.versions.AbortRebuild(ctx, p, v.Building); err != nil {
		if errors.Is(err, readmodel.ErrRebuildConflict) {
			return 0, &es.RuleError{Rule: "projector.rebuild_unchanged", Subject: p,
				Reason: fmt.Sprintf("the rebuild of %s changed meanwhile (%v); look at the status and try again", p, err)}
		}
		return 0, fmt.Errorf("%w: %w", es.ErrUnavailable, err)
	}
	return v.Building, nil
}

// StartRebuild starts (or resumes) a rebuild of the projection from source in this process.
func (a *Admin) StartRebuild(projection string, source RebuildSource) (*RebuildRun, error) {
	p, err := ProjectionArg(projection)
	if err != nil {
		return nil, err
	}
	if a.rebuilds == nil {
		return nil, errNoRebuilds(p)
	}
	return a.rebuilds.Start(p, source)
}

// WatchRebuild returns the rebuild of the projection this process runs.
func (a *Admin) WatchRebuild(projection string) (*RebuildRun, error) {
	p, err := ProjectionArg(projection)
	if err != nil {
		return nil, err
	}
	if a.rebuilds == nil {
		return nil, errNoRebuilds(p)
	}
	run := a.rebuilds.Running(p)
	if run == nil {
		return nil, fmt.Errorf("%w: this projector runs no rebuild of %s (a rebuild run elsewhere shows in GetProjectorStatus)", es.ErrNotFound, p)
	}
	return run, nil
}

func errNoRebuilds(projection string) error {
	return &es.RuleError{Rule: "projector.rebuilds_served", Subject: projection, Reason: "this server does not run rebuilds"}
}

// versionTimes returns, from the projectors' configuration, how long after a switch the
// previous version is surely still written (SwitchBack) and after how long it surely is not
// (DropVersion): the retire grace less, and plus, two polls of projection_versions.
func (a *Admin) versionTimes() (current, retired time.Duration) {
	cfg := Config{}.withDefaults()
	if a.rebuilds != nil {
		cfg = a.rebuilds.Config()
	}
	return max(cfg.RetireGrace-2*cfg.PollInterval, 0), cfg.RetireGrace + 2*cfg.PollInterval
}

// SwitchBack makes the previous version of the projection active again while it is still
// written.
func (a *Admin) SwitchBack(ctx context.Context, projection string) (readmodel.Versions, error) {
	p, err := ProjectionArg(projection)
	if err != nil {
		return readmodel.Versions{}, err
	}
	current, _ := a.versionTimes()
	v, err := a.versions.SwitchBack(ctx, p, current)
	if err != nil {
		return readmodel.Versions{}, versionsError(p, "projector.switch_back_safe", err)
	}
	return v, nil
}

// DropVersion drops the tables of a version of the projection that nothing uses.
func (a *Admin) DropVersion(ctx context.Context, projection string, version int) ([]string, error) {
	p, err := ProjectionArg(projection)
	if err != nil {
		return nil, err
	}
	if version < 1 {
		return nil, es.Invalid("version", fmt.Sprintf("must be at least 1, got %d", version))
	}
	_, retired := a.versionTimes()
	dropped, err := a.versions.DropVersion(ctx, p, version, retired)
	if err != nil {
		return nil, versionsError(p, "projector.version_unused", err)
	}
	return dropped, nil
}

// versionsError maps an error of a change of versions for a client.
func versionsError(projection, rule string, err error) error {
	switch {
	case errors.Is(err, es.ErrNotFound), errors.Is(err, es.ErrInvalidArgument):
		return err
	case errors.Is(err, readmodel.ErrUnsafe), errors.Is(err, readmodel.ErrRebuildConflict):
		return &es.RuleError{Rule: rule, Subject: projection, Reason: err.Error()}
	}
	return fmt.Errorf("%w: %w", es.ErrUnavailable, err)
}
