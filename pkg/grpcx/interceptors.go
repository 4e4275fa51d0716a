package grpcx

import (
	"context"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ordersys/ordersys/pkg/telemetry"
)

// recoveryUnary turns a handler panic into an Internal status, logging the panic with its stack.
func recoveryUnary(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				logger.ErrorContext(ctx, "panic in grpc handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				resp, err = nil, status.Error(codes.Internal, InternalMessage)
			}
		}()
		return handler(ctx, req)
	}
}

func recoveryStream(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				logger.ErrorContext(ss.Context(), "panic in grpc handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, InternalMessage)
			}
		}()
		return handler(srv, ss)
	}
}

// loggingUnary logs every request at debug level with its code and duration.
func loggingUnary(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !logger.Enabled(ctx, slog.LevelDebug) {
			// Nothing to log: skip the clock and the line's arguments (allocations per call).
			return handler(ctx, req)
		}
		start := time.Now()
		resp, err := handler(ctx, req)
		logger.DebugContext(ctx, "grpc request", "method", info.FullMethod, "code", status.Code(err).String(), "duration", time.Since(start))
		return resp, err
	}
}

func loggingStream(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		logger.DebugContext(ss.Context(), "grpc stream", "method", info.FullMethod, "code", status.Code(err).String(), "duration", time.Since(start))
		return err
	}
}

// serverMetrics counts handled RPCs and observes their latency. The names are those of
// go-grpc-prometheus behind the ordersys_ prefix every metric of ordersys has
// (ordersys_grpc_server_handled_total, ordersys_grpc_server_handling_seconds), the label names
// are theirs, so a dashboard made for them needs the prefix only.
type serverMetrics struct {
	handled *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

func newServerMetrics(reg prometheus.Registerer) *serverMetrics {
	m := &serverMetrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersys_grpc_server_handled_total",
			Help: "RPCs completed on the server, by service, method, type and status code.",
		}, []string{"grpc_service", "grpc_method", "grpc_type", "grpc_code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ordersys_grpc_server_handling_seconds",
			Help:    "Time the server took to handle RPCs, by service, method and type.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"grpc_service", "grpc_method", "grpc_type"}),
	}
	m.handled = telemetry.RegisterOrReuse(reg, m.handled)
	m.latency = telemetry.RegisterOrReuse(reg, m.latency)
	return m
}

func (m *serverMetrics) observe(fullMethod, typ string, err error, d time.Duration) {
	svc, method := splitMethod(fullMethod)
	m.handled.WithLabelValues(svc, method, typ, status.Code(err).String()).Inc()
	m.latency.WithLabelValues(svc, method, typ).Observe(d.Seconds())
}

func (m *serverMetrics) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		m.observe(info.FullMethod, "unary", err, time.Since(start))
		return resp, err
	}
}

func (m *serverMetrics) stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		typ := "bidi_stream"
		switch {
		case info.IsClientStream && !info.IsServerStream:
			typ = "client_stream"
		case !info.IsClientStream && info.IsServerStream:
			typ = "server_stream"
		}
		m.observe(info.FullMethod, typ, err, time.Since(start))
		return err
	}
}

// splitMethod splits "/pkg.Service/Method" into "pkg.Service" and "Method".
func splitMethod(full string) (service, method string) {
	full = strings.TrimPrefix(full, "/")
	if i := strings.LastIndex(full, "/"); i >= 0 {
		return full[:i], full[i+1:]
	}
	return "unknown", full
}
