package projector

import (
	"context"
	"log/slog"
	"time"

	"github.com/gocql/gocql"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	okafka "github.com/ordersys/ordersys/pkg/kafka"
)

// HealthSetter receives serving statuses (grpc health.Server implements it).
type HealthSetter interface {
	// SetServingStatus sets the status of a service ("" for the whole server).
	SetServingStatus(service string, status healthpb.HealthCheckResponse_ServingStatus)
}

// WatchHealth checks Cassandra (a query on system.local) and Kafka (okafka.Ping) every
// interval until ctx ends, and marks the services NOT_SERVING while either is unreachable,
// SERVING otherwise (the status is set on every check).
func WatchHealth(ctx context.Context, s *gocql.Session, kc okafka.Cluster, h HealthSetter, services []string, interval time.Duration, log *slog.Logger) {
	last := healthpb.HealthCheckResponse_UNKNOWN
	for {
		status := healthpb.HealthCheckResponse_SERVING
		cctx, cancel := context.WithTimeout(ctx, interval)
		var now gocql.UUID
		if err := s.Query(`SELECT now() FROM system.local`).WithContext(cctx).Scan(&now); err != nil && ctx.Err() == nil {
			status = healthpb.HealthCheckResponse_NOT_SERVING
			log.Warn("health: cassandra unreachable", "err", err)
		}
		if err := okafka.Ping(cctx, kc); err != nil && ctx.Err() == nil {
			status = healthpb.HealthCheckResponse_NOT_SERVING
			log.Warn("health: kafka unreachable", "err", err)
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		for _, svc := range services { // every time: the server marks itself SERVING when it starts
			h.SetServingStatus(svc, status)
		}
		if status != last {
			log.Info("health changed", "status", status.String())
			last = status
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
