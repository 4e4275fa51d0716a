package app

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

// Rebuilds runs the rebuilds started through the admin service (StartRebuild): at most one per
// projection in this process, on the server's lifetime context, so a client that goes away
// does not stop it (WatchRebuild follows it again; AbortRebuild gives it up). A rebuild of the
// same version run by another process at the same time (another replica, `projector rebuild`)
// is harmless: both write the same rows at the same version-derived timestamps.
type Rebuilds struct {
	ctx  context.Context
	cfg  Config
	d    Deps
	opts RebuildOptions

	mu   sync.Mutex
	runs map[string]*RebuildRun
}

// NewRebuilds returns the runner of the rebuilds of this process; they stop when ctx ends (and
// resume when started again). opts tunes every rebuild (its Source and Progress are set per run).
func NewRebuilds(ctx context.Context, cfg Config, d Deps, opts RebuildOptions) *Rebuilds {
	return &Rebuilds{ctx: ctx, cfg: cfg.withDefaults(), d: d, opts: opts, runs: map[string]*RebuildRun{}}
}

// Config returns the projector configuration the rebuilds run with.
func (r *Rebuilds) Config() Config { return r.cfg }

// Start starts a rebuild of the projection from source (or resumes the version being built)
// and returns it; a rebuild of the projection already running in this process is an
// es.RuleError.
func (r *Rebuilds) Start(projection string, source RebuildSource) (*RebuildRun, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if run := r.runs[projection]; run != nil {
		last, _, _, _ := run.state()
		return nil, &es.RuleError{Rule: "projector.one_rebuild_at_a_time", Subject: projection,
			Reason: fmt.Sprintf("this projector already rebuilds %s (version %d, from %s): follow it with WatchRebuild", projection, last.Version, run.source)}
	}
	run := &RebuildRun{source: source, changed: make(chan struct{}),
		last: RebuildProgress{Projection: projection, Source: source}}
	r.runs[projection] = run
	opts := r.opts
	opts.Source = source
	opts.Progress = run.report
	go func() {
		_, err := Rebuild(r.ctx, r.cfg, r.d, projection, opts)
		if err != nil {
			r.d.Logger.Warn("rebuild ended without a switch", "projection", projection, "source", source, "err", err)
		}
		r.mu.Lock()
		delete(r.runs, projection)
		r.mu.Unlock()
		run.finish(err)
	}()
	return run, nil
}

// Running returns the rebuild of the projection this process runs, nil when none.
func (r *Rebuilds) Running(projection string) *RebuildRun {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[projection]
}

// RebuildRun is one rebuild run by Rebuilds; any number of callers follow it.
type RebuildRun struct {
	source RebuildSource

	mu      sync.Mutex
	last    RebuildProgress
	reports int
	changed chan struct{} // closed (and replaced) on every report and at the end
	done    bool
	err     error
}

func (run *RebuildRun) report(p RebuildProgress) {
	run.mu.Lock()
	defer run.mu.Unlock()
	run.last, run.reports = p, run.reports+1
	close(run.changed)
	run.changed = make(chan struct{})
}

func (run *RebuildRun) finish(err error) {
	run.mu.Lock()
	defer run.mu.Unlock()
	run.done, run.err = true, err
	close(run.changed)
	run.changed = make(chan struct{})
}

func (run *RebuildRun) state() (last RebuildProgress, reports int, changed <-chan struct{}, done bool) {
	run.mu.Lock()
	defer run.mu.Unlock()
	return run.last, run.reports, run.changed, run.done
}

// Follow calls send with the run's latest report and every later one (a slow follower skips to
// the latest; the last report is always sent) until the run ends, and returns its outcome: nil
// once readers were switched, else why not (readmodel.ErrRebuildConflict as an es.RuleError,
// anything else as es.ErrUnavailable). It returns early when ctx ends or send fails.
func (run *RebuildRun) Follow(ctx context.Context, send func(RebuildProgress) error) error {
	sent := 0
	for {
		last, reports, changed, done := run.state()
		if reports > sent {
			if err := send(last); err != nil {
				return err
			}
			sent = reports
		}
		if done {
			run.mu.Lock()
			err := run.err
			run.mu.Unlock()
			return rebuildError(last.Projection, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// rebuildError maps the outcome of a rebuild for a client.
func rebuildError(projection string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, readmodel.ErrRebuildConflict):
		return &es.RuleError{Rule: "projector.rebuild_unchanged", Subject: projection, Reason: err.Error()}
	}
	return fmt.Errorf("%w: %w", es.ErrUnavailable, err)
}
