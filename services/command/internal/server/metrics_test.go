package server

import (
	"testing"

	"github.com/ordersys/ordersys/pkg/buildinfo"
	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/ordersys/ordersys/pkg/telemetry/telemetrytest"
	"github.com/ordersys/ordersys/services/command/internal/app"
)

// TestMetricNames registers the metrics Run registers (the build, the gRPC server's, the
// command handler's) and lints their names: the ordersys_ prefix and Prometheus' conventions.
func TestMetricNames(t *testing.T) {
	r := telemetrytest.NewRegistry()
	buildinfo.Register(r, ServiceName)
	grpcx.NewServer(grpcx.ServerOptions{Registry: r})
	app.NewMetrics(r)
	r.Lint(t, 10)
}
