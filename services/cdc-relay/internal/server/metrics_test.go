package server_test

import (
	"testing"

	"github.com/ordersys/ordersys/pkg/buildinfo"
	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/ordersys/ordersys/pkg/telemetry/telemetrytest"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/relay"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/server"
)

// TestMetricNames registers the metrics Run registers (the build, the gRPC server's, the
// relay's, the decoding watch's) and lints their names: the ordersys_ prefix and Prometheus'
// conventions.
func TestMetricNames(t *testing.T) {
	r := telemetrytest.NewRegistry()
	buildinfo.Register(r, server.ServiceName)
	grpcx.NewServer(grpcx.ServerOptions{Registry: r})
	relay.NewMetrics(r)
	grpcx.NewDecodeWatch(r, "ordersys_relay", nil, nil, relay.DecodeReasons...)
	r.Lint(t, 20)
}
