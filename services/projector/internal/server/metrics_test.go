package server

import (
	"testing"

	"github.com/ordersys/ordersys/pkg/buildinfo"
	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/ordersys/ordersys/pkg/telemetry/telemetrytest"
	"github.com/ordersys/ordersys/services/projector/internal/app"
	"github.com/ordersys/ordersys/services/projector/internal/consumer"
)

// TestMetricNames registers the metrics Run registers (the build, the gRPC server's, the
// projections', the decoding watch's) and lints their names: the ordersys_ prefix and
// Prometheus' conventions.
func TestMetricNames(t *testing.T) {
	r := telemetrytest.NewRegistry()
	buildinfo.Register(r, ServiceName)
	grpcx.NewServer(grpcx.ServerOptions{Registry: r})
	consumer.NewMetrics(r)
	grpcx.NewDecodeWatch(r, "ordersys_projector", nil, nil, app.ReasonUndecodable, app.ReasonUnknownEvent)
	r.Lint(t, 12)
}
