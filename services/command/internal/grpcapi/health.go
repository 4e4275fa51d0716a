package grpcapi

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// ServiceNames are the gRPC services whose health WatchHealth reports, with "" (the server as a
// whole).
var ServiceNames = []string{"", ordersv1.OrderCommandService_ServiceDesc.ServiceName, ordersv1.CustomerCommandService_ServiceDesc.ServiceName}

// WatchHealth calls probe every interval until ctx ends and sets the health status of
// ServiceNames to SERVING when it succeeds, NOT_SERVING when it fails (a command service
// without its store cannot serve). Transitions are logged. Once the health server is shut
// down (graceful stop), it stays NOT_SERVING whatever the probe says.
func WatchHealth(ctx context.Context, hs *health.Server, probe func(context.Context) error, interval time.Duration, logger *slog.Logger) {
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
				logger.Info("event store answers again: serving")
			} else {
				logger.Warn("event store does not answer: not serving", "err", err)
			}
		}
		for _, name := range ServiceNames {
			hs.SetServingStatus(name, status)
		}
	}
}
