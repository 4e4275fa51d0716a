// Package bootstrap is the start-up every ordersys service shares, written once.
//
// A service's cmd/<name>/main.go calls Main (--help, --version, a context that ends on SIGINT
// or SIGTERM), which reads the configuration (LoadConfig over the service's Defaults) and calls
// Serve: Start (the JSON logger, the "starting" line with the masked configuration, the tracer
// provider; Stop flushes the traces within a deadline of its own and logs "stopped") and then
// the service's internal/server.Run(ctx, cfg, log, Listeners). Run builds the service from
// the configuration with the helpers here: Open (the Prometheus registry with the build
// information served on /metrics, /healthz and /readyz, and the CQL session), CheckSchema (is
// the keyspace migrated?), PersonalData (the event registry and the key store of customers'
// personal data) and NewServer (the gRPC server with its security, bound, answering /readyz).
// The health watch is grpcx.WatchHealth with one probe per dependency; the Kafka ping is
// kafka.Ping.
package bootstrap

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordersys/ordersys/pkg/buildinfo"
	"github.com/ordersys/ordersys/pkg/config"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/ordersys/ordersys/pkg/retry"
	"github.com/ordersys/ordersys/pkg/telemetry"
)

// TraceFlushTimeout bounds the flush of the traces when a process stops, whatever its context.
const TraceFlushTimeout = 5 * time.Second

// SchemaTimeout bounds the first check that the keyspace is migrated.
const SchemaTimeout = 30 * time.Second

// connectRetryMax is the longest pause between two attempts to connect (ConnectOptions.Retry).
const connectRetryMax = 10 * time.Second

// Process is a started service process: its logger and its tracer provider.
type Process struct {
	// Log is the process's logger (also slog's default).
	Log             *slog.Logger
	shutdownTracing func(context.Context) error
}

// Start sets up a service process: the JSON logger of common.LogLevel (made slog's default), a
// "starting" line with cfg (secrets masked), and the global tracer provider exporting to
// common.OTLPEndpoint. Call Stop when the process ends.
func Start(ctx context.Context, service string, common config.Common, cfg any) (*Process, error) {
	log := telemetry.Logger(service, common.LogLevel)
	slog.SetDefault(log)
	log.Info("starting", "config", config.LogValue(cfg))
	shutdown, err := telemetry.Setup(ctx, telemetry.Options{
		ServiceName: service, OTLPEndpoint: common.OTLPEndpoint, SampleRatio: common.TraceSampleRatio,
	})
	if err != nil {
		log.Info("stopped")
		return nil, fmt.Errorf("tracing: %w", err)
	}
	return &Process{Log: log, shutdownTracing: shutdown}, nil
}

// Stop flushes the traces, within TraceFlushTimeout even when ctx has ended, and logs
// "stopped".
func (p *Process) Stop(ctx context.Context) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), TraceFlushTimeout)
	defer cancel()
	if err := p.shutdownTracing(sctx); err != nil {
		p.Log.Warn("flush traces", "err", err)
	}
	p.Log.Info("stopped")
}

// Metrics is a service's metrics registry and the readiness its /readyz answers.
type Metrics struct {
	// Registry holds the service's metrics, ordersys_build_info among them.
	Registry *prometheus.Registry
	// Ready answers /readyz: set it to the gRPC server's overall health once that exists.
	Ready *telemetry.Readiness
}

// ServeMetrics makes the service's registry (with its build information) and serves /metrics,
// /healthz and /readyz on ln, or, when ln is nil, on a listener bound to addr, until ctx ends.
func ServeMetrics(ctx context.Context, service, addr string, ln net.Listener, log *slog.Logger) (Metrics, error) {
	m := Metrics{Registry: telemetry.NewRegistry(), Ready: new(telemetry.Readiness)}
	buildinfo.Register(m.Registry, service)
	if ln != nil {
		telemetry.ServeMetricsListener(ctx, ln, m.Registry, m.Ready, log)
		return m, nil
	}
	_, err := telemetry.ServeMetrics(ctx, addr, m.Registry, m.Ready, log)
	return m, err
}

// ConnectOptions configures ConnectCQL.
type ConnectOptions struct {
	// What names the data the service needs in the error, e.g. "event store".
	What string
	// Retry keeps trying to connect (with growing pauses, until ctx ends) instead of failing at
	// the first refusal.
	Retry bool
	// Log receives the failed attempts when Retry is set.
	Log *slog.Logger
}

// ConnectCQL opens the session of cfg. The caller closes it.
func ConnectCQL(ctx context.Context, cfg config.CQL, opts ConnectOptions) (*gocql.Session, error) {
	sc := cql.SessionConfigFrom(cfg)
	var s *gocql.Session
	var err error
	if opts.Retry {
		err = retry.Until(ctx, connectRetryMax, func() (err error) {
			s, err = cql.Connect(sc)
			return err
		}, func(attempt int, err error, wait time.Duration) {
			opts.Log.Warn("cannot connect to the store, retrying", "attempt", attempt, "wait", wait, "err", err)
		})
	} else {
		s, err = cql.Connect(sc)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opts.What, err)
	}
	return s, nil
}

// CheckSchema runs probe, a read that succeeds only once keyspace is migrated, within
// SchemaTimeout; what names the data read, e.g. "event store".
func CheckSchema(ctx context.Context, keyspace, what string, probe func(context.Context) error) error {
	sctx, cancel := context.WithTimeout(ctx, SchemaTimeout)
	defer cancel()
	if err := probe(sctx); err != nil {
		return fmt.Errorf("%s does not answer (is keyspace %s migrated? run migrate): %w", what, keyspace, err)
	}
	return nil
}

// Listeners are a service's endpoints bound in advance (tests bind 127.0.0.1:0 or connect
// through a fault proxy); a nil one is opened from the configuration.
type Listeners struct {
	// GRPC serves the gRPC server, Metrics the HTTP /metrics, /healthz and /readyz.
	GRPC, Metrics net.Listener
	// Session, when set, is the CQL session to use instead of connecting to the configured
	// hosts; the caller closes it.
	Session *gocql.Session
	// HealthInterval, when positive, is how often the health watch probes the dependencies
	// instead of the service's own interval (tests probe every few milliseconds).
	HealthInterval time.Duration
}

// Interval returns l.HealthInterval when it is set, otherwise def.
func (l Listeners) Interval(def time.Duration) time.Duration {
	if l.HealthInterval > 0 {
		return l.HealthInterval
	}
	return def
}

// GRPCListener returns l.GRPC, or a listener bound to addr when it is nil.
func (l Listeners) GRPCListener(addr string) (net.Listener, error) {
	if l.GRPC != nil {
		return l.GRPC, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("grpc: listen on %s: %w", addr, err)
	}
	return ln, nil
}

// serverOptions returns the gRPC server options of a service: its logger and metrics registry,
// the shutdown timeout of common and the TLS, tokens and request bounds of sec (whose files it
// loads).
func serverOptions(service string, common config.Common, sec config.GRPCServer, m Metrics, log *slog.Logger) (grpcx.ServerOptions, error) {
	security, err := grpcx.LoadSecurity(sec)
	if err != nil {
		return grpcx.ServerOptions{}, fmt.Errorf("grpc security: %w", err)
	}
	return grpcx.ServerOptions{Logger: log, Registry: m.Registry, ServiceName: service,
		ShutdownTimeout: common.ShutdownTimeout, Security: security}, nil
}
