package grpcx

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// WatchHealth calls probe every interval (each call bounded by interval) until ctx ends and sets
// the health status of services ("" for the server as a whole) to SERVING when it succeeds,
// NOT_SERVING when it fails. Transitions are logged, naming dependency (what probe checks, e.g.
// "event store"). Once hs is shut down (graceful stop), it stays NOT_SERVING whatever the probe
// says.
func WatchHealth(ctx context.Context, hs *health.Server, services []string, dependency string, probe func(context.Context) error, interval time.Duration, logger *slog.Logger) {
	serving := true
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, interval)
		err := probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		status := healthpb.HealthCheckResponse_SERVING
		if err != nil {
			status = healthpb.HealthCheckResponse_NOT_SERVING
		}
		if ok := err == nil; ok != serving {
			serving = ok
			if ok {
				logger.Info(dependency + " answers again: serving")
			} else {
				logger.Warn(dependency+" does not answer: not serving", "err", err)
			}
		}
		for _, name := range services {
			hs.SetServingStatus(name, status)
		}
	}
}
