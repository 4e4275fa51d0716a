package grpcapi

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc/health"

	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/grpcx"
)

// ServiceNames are the gRPC services whose health WatchHealth reports, with "" (the server as a
// whole).
var ServiceNames = []string{"", ordersv1.OrderCommandService_ServiceDesc.ServiceName, ordersv1.CustomerCommandService_ServiceDesc.ServiceName}

// WatchHealth calls probe every interval until ctx ends and sets the health status of
// ServiceNames to SERVING when it succeeds, NOT_SERVING when it fails (a command service
// without its store cannot serve); see grpcx.WatchHealth.
func WatchHealth(ctx context.Context, hs *health.Server, probe func(context.Context) error, interval time.Duration, logger *slog.Logger) {
	grpcx.WatchHealth(ctx, hs, ServiceNames, "event store", probe, interval, logger)
}
