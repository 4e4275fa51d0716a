package grpcx

import (
	"context"
	"log/slog"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Probe is one dependency a service needs in order to serve.
type Probe struct {
	// Name names the dependency in logs and in Observe, e.g. "event store" or "kafka".
	Name string
	// Check returns nil when the dependency answers; its context carries a deadline.
	Check func(context.Context) error
}

// HealthSetter receives serving statuses (*health.Server implements it).
type HealthSetter interface {
	// SetServingStatus sets the status of a service ("" for the whole server).
	SetServingStatus(service string, status healthpb.HealthCheckResponse_ServingStatus)
}

// HealthWatch configures WatchHealth.
type HealthWatch struct {
	// Services are the names whose status is set ("" for the server as a whole).
	Services []string
	// Probes are the dependencies checked; the services are SERVING only while all answer.
	Probes []Probe
	// Interval is the pause between two rounds of checks and bounds each round.
	Interval time.Duration
	// Logger receives the transitions of each probe.
	Logger *slog.Logger
	// Observe, when set, receives every check's outcome (e.g. for a dependency-up gauge).
	Observe func(probe string, err error)
}

// WatchHealth runs the probes at once and then every interval until ctx ends, and sets the
// status of the services to SERVING when every probe succeeds, NOT_SERVING when one fails (on
// every round: a server marks itself SERVING when it starts). Each probe's transitions are
// logged. Once a *health.Server is shut down (graceful stop) it stays NOT_SERVING whatever
// the probes say.
func WatchHealth(ctx context.Context, hs HealthSetter, w HealthWatch) {
	up := make([]bool, len(w.Probes))
	for i := range up {
		up[i] = true
	}
	t := time.NewTicker(w.Interval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, max(w.Interval, time.Second))
		errs := make([]error, len(w.Probes))
		for i, p := range w.Probes {
			errs[i] = p.Check(pctx)
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		status := healthpb.HealthCheckResponse_SERVING
		for i, p := range w.Probes {
			err := errs[i]
			if w.Observe != nil {
				w.Observe(p.Name, err)
			}
			if err != nil {
				status = healthpb.HealthCheckResponse_NOT_SERVING
			}
			if ok := err == nil; ok != up[i] {
				up[i] = ok
				if ok {
					w.Logger.Info(p.Name + " answers again")
				} else {
					w.Logger.Warn(p.Name+" does not answer: not serving", "err", err)
				}
			}
		}
		for _, name := range w.Services {
			hs.SetServingStatus(name, status)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
