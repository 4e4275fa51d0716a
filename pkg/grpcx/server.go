// Package grpcx assembles the gRPC server every ordersys service runs: OpenTelemetry stats
// handler, panic recovery, request logging, Prometheus server metrics, mapping of domain errors
// to status codes with google.rpc error details (ToStatus), the standard grpc.health.v1.Health
// service and server reflection. It also offers an instrumented client connection helper.
package grpcx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// HealthServiceLiveness is the health service name that answers whether the process itself is
// alive: SERVING from the start of serving until the graceful stop, whatever the dependencies
// do. Liveness probes check it, so a database outage does not restart healthy pods; readiness
// probes check the server as a whole (""), which turns NOT_SERVING while a dependency does not
// answer.
const HealthServiceLiveness = "ordersys.liveness"

// DefaultShutdownTimeout bounds the graceful stop Serve performs when its context ends, unless
// ServerOptions.ShutdownTimeout says otherwise.
const DefaultShutdownTimeout = 15 * time.Second

// ServerOptions configures NewServer. Every field is optional.
type ServerOptions struct {
	// Logger receives panics, failed requests and (at debug) every request. Default slog.Default().
	Logger *slog.Logger
	// Registry receives the server metrics ordersys_grpc_server_handled_total and
	// ordersys_grpc_server_handling_seconds. Nil disables them.
	Registry prometheus.Registerer
	// ServiceName names the process in log records, e.g. "command".
	ServiceName string
	// ShutdownTimeout bounds the graceful stop Serve performs when its context ends.
	ShutdownTimeout time.Duration
	// UnaryInterceptors run inside the built-in ones (after metrics, logging, error mapping and
	// panic recovery), in order.
	UnaryInterceptors []grpc.UnaryServerInterceptor
	// StreamInterceptors run inside the built-in ones, in order.
	StreamInterceptors []grpc.StreamServerInterceptor
	// GRPCOptions are passed on to grpc.NewServer.
	GRPCOptions []grpc.ServerOption
	// Security is TLS, tokens and request bounds (zero: plaintext, open, gRPC's defaults).
	Security Security
}

// Server is a *grpc.Server with the ordersys instrumentation, health and reflection. It
// implements grpc.ServiceRegistrar, so generated RegisterXxxServer functions accept it.
type Server struct {
	// GRPC is the underlying server.
	GRPC *grpc.Server
	// Health is the standard health service. Serve marks the overall status ("") and every
	// registered service SERVING; services may change a status at any time (for instance
	// NOT_SERVING while a dependency is down). GracefulStop marks all NOT_SERVING.
	Health *health.Server

	logger          *slog.Logger
	shutdownTimeout time.Duration
}

// NewServer builds a Server. Interceptors run outermost first: metrics, request logging, error
// mapping (ErrorInterceptor), panic recovery, then opts' own interceptors and the handler, so
// metrics and logs see the final status code, including that of a recovered panic.
func NewServer(opts ServerOptions) *Server {
	logger := orDefault(opts.Logger)
	if opts.ServiceName != "" {
		logger = logger.With("service", opts.ServiceName)
	}
	var unary []grpc.UnaryServerInterceptor
	var stream []grpc.StreamServerInterceptor
	if opts.Registry != nil {
		m := newServerMetrics(opts.Registry)
		unary = append(unary, m.unary())
		stream = append(stream, m.stream())
	}
	unary = append(unary, loggingUnary(logger), ErrorInterceptor(logger), recoveryUnary(logger))
	stream = append(stream, loggingStream(logger), StreamErrorInterceptor(logger), recoveryStream(logger))
	secOpts, secUnary, secStream := opts.Security.serverOptions()
	unary = append(append(unary, secUnary...), opts.UnaryInterceptors...)
	stream = append(append(stream, secStream...), opts.StreamInterceptors...)

	gopts := []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler()),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}
	gopts = append(append(gopts, secOpts...), opts.GRPCOptions...)

	s := &Server{
		GRPC:            grpc.NewServer(gopts...),
		Health:          health.NewServer(),
		logger:          logger,
		shutdownTimeout: opts.ShutdownTimeout,
	}
	if s.shutdownTimeout <= 0 {
		s.shutdownTimeout = DefaultShutdownTimeout
	}
	healthpb.RegisterHealthServer(s.GRPC, s.Health)
	if !opts.Security.NoReflection {
		reflection.Register(s.GRPC)
	}
	return s
}

// RegisterService registers a service implementation; it makes Server a grpc.ServiceRegistrar.
func (s *Server) RegisterService(desc *grpc.ServiceDesc, impl any) {
	s.GRPC.RegisterService(desc, impl)
}

// Ready reports the server's overall health status (""), as a readiness probe reads it: nil
// when SERVING, an error otherwise (not yet serving, a dependency down, shutting down). It is
// what /readyz on the metrics port answers (telemetry.Readiness).
func (s *Server) Ready(ctx context.Context) error {
	res, err := s.Health.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	if st := res.GetStatus(); st != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health status %s", st)
	}
	return nil
}

// Listen binds addr (host:port; port 0 picks a free one). Pass the listener to ServeListener.
func (s *Server) Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("grpc: listen on %s: %w", addr, err)
	}
	return ln, nil
}

// Serve listens on addr and serves until the server is stopped; see ServeListener.
func (s *Server) Serve(ctx context.Context, addr string) error {
	ln, err := s.Listen(addr)
	if err != nil {
		return err
	}
	return s.ServeListener(ctx, ln)
}

// ServeListener marks the health statuses SERVING and serves on ln. When ctx ends it stops
// gracefully (bounded by ServerOptions.ShutdownTimeout) and returns once the stop is complete.
// It returns nil after a stop, or the error that ended serving.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	s.Health.Resume()
	s.Health.SetServingStatus(HealthServiceLiveness, healthpb.HealthCheckResponse_SERVING)
	s.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	for name := range s.GRPC.GetServiceInfo() {
		s.Health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}

	served := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.shutdownTimeout)
			defer cancel()
			if err := s.GracefulStop(sctx); err != nil {
				s.logger.Warn("grpc server stopped forcibly", "err", err)
			}
		case <-served:
		}
	}()

	s.logger.Info("grpc server listening", "addr", ln.Addr().String())
	err := s.GRPC.Serve(ln)
	close(served)
	<-stopped
	if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("grpc: serve on %s: %w", ln.Addr(), err)
	}
	return nil
}

// GracefulStop marks every health status NOT_SERVING, stops accepting connections and waits for
// pending RPCs; when ctx ends first it stops hard, closing every connection, and returns ctx's
// error.
func (s *Server) GracefulStop(ctx context.Context) error {
	s.Health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.GRPC.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.GRPC.Stop()
		<-done
		return ctx.Err()
	}
}

// ClientConn opens a client connection to target (e.g. "127.0.0.1:50051") with insecure
// transport credentials and the OpenTelemetry client stats handler, which propagates the trace
// context. Extra dial options are appended. The connection is established lazily.
func ClientConn(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	all := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
	}
	conn, err := grpc.NewClient(target, append(all, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("grpc: client for %s: %w", target, err)
	}
	return conn, nil
}
