package app

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ordersys/ordersys/pkg/readmodel"
)

// Supervisor keeps a consumer running for every version of every projection that must be
// written, following projection_versions.
type Supervisor struct {
	cfg Config
	d   Deps

	mu      sync.Mutex
	running map[versionKey]*runningConsumer
	wg      sync.WaitGroup
}

type versionKey struct {
	projection string
	version    int
}

type runningConsumer struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// NewSupervisor returns a supervisor; Run starts it.
func NewSupervisor(cfg Config, d Deps) *Supervisor {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return &Supervisor{cfg: cfg.withDefaults(), d: d, running: map[versionKey]*runningConsumer{}}
}

// Run reconciles the running consumers with projection_versions every PollInterval until ctx
// ends, then stops every consumer (committing what was processed) and returns.
func (s *Supervisor) Run(ctx context.Context) error {
	defer s.stopAll()
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		s.reconcile(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Running returns the versions being written per projection.
func (s *Supervisor) Running() map[string][]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]int{}
	for k := range s.running {
		out[k.projection] = append(out[k.projection], k.version)
	}
	return out
}

func (s *Supervisor) reconcile(ctx context.Context) {
	for _, p := range readmodel.Projections() {
		v, err := s.d.Versions.Load(ctx, p)
		if err != nil {
			if ctx.Err() == nil {
				s.d.Logger.Warn("read projection versions; keeping the running consumers", "projection", p, "err", err)
			}
			continue
		}
		want := map[int]bool{}
		for _, n := range v.Writable(time.Now(), s.cfg.RetireGrace) {
			want[n] = true
		}
		s.mu.Lock()
		for k, rc := range s.running {
			if k.projection == p && !want[k.version] {
				s.d.Logger.Info("stopping consumer of a retired version", "projection", p, "version", k.version)
				rc.cancel()
				delete(s.running, k)
			}
		}
		for n := range want {
			k := versionKey{p, n}
			if _, ok := s.running[k]; ok {
				continue
			}
			run, err := projectionConsumer(s.cfg, s.d, p, n)
			if err != nil {
				s.d.Logger.Error("create consumer", "projection", p, "version", n, "err", err)
				continue
			}
			cctx, cancel := context.WithCancel(ctx)
			rc := &runningConsumer{cancel: cancel, done: make(chan struct{})}
			s.running[k] = rc
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer close(rc.done)
				if err := run(cctx); err != nil {
					s.d.Logger.Error("consumer stopped", "projection", p, "version", n, "err", err)
				}
				s.mu.Lock()
				if s.running[k] == rc { // stopped on its own: the next pass restarts it
					delete(s.running, k)
				}
				s.mu.Unlock()
			}()
		}
		s.mu.Unlock()
	}
}

func (s *Supervisor) stopAll() {
	s.mu.Lock()
	for k, rc := range s.running {
		rc.cancel()
		delete(s.running, k)
	}
	s.mu.Unlock()
	s.wg.Wait()
}
