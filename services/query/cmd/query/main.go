// Command query runs the ordersys query service: the read side, serving
// orders.v1.OrderQueryService and orders.v1.CustomerQueryService over gRPC (with health and
// reflection) and Prometheus metrics over HTTP. It reads the read models the projector builds
// and, for GetOrderHistory and GetOrderAt, the CQL event store.
//
// Configuration comes from ORDERSYS_* environment variables (docs/DESIGN.md), plus
// ORDERSYS_QUERY_MAX_WAIT (see services/query/README.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ordersys/ordersys/pkg/buildinfo"
	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/config"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/ordersys/ordersys/pkg/pii"
	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/pkg/telemetry"
	"github.com/ordersys/ordersys/services/query/internal/app"
	"github.com/ordersys/ordersys/services/query/internal/grpcapi"
	"github.com/ordersys/ordersys/services/query/internal/storage"
)

// serviceName names the service in logs, traces and metrics.
const serviceName = "query"

// healthInterval is how often the database is probed for the health status.
const healthInterval = 5 * time.Second

// Config is the query service's configuration.
type Config struct {
	config.Common
	// GRPC is the gRPC server's TLS, tokens and request bounds.
	GRPC config.GRPCServer
	// PII is the encryption of customers' personal data (history and GetCustomerAt decrypt).
	PII config.PII
	// MaxWait bounds how long GetOrder waits for min_version when the call has no deadline.
	MaxWait time.Duration `env:"ORDERSYS_QUERY_MAX_WAIT" default:"10s"`
}

// usage is what --help prints above the configuration.
const usage = "usage: query\n\nThe gRPC query service (orders.v1.OrderQueryService, CustomerQueryService)."

func main() {
	if config.InfoRequested(os.Args[1:], os.Stdout, serviceName, usage, &Config{Common: config.Defaults(config.QueryGRPCAddr, config.QueryMetricsAddr)}) {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "query: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	// -------------------------------------------------------------------------------------
	// Configuration and logging

	cfg := Config{Common: config.Defaults(config.QueryGRPCAddr, config.QueryMetricsAddr)}
	if err := config.Load(&cfg); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if cfg.MaxWait < 100*time.Millisecond {
		return errors.New("configuration: ORDERSYS_QUERY_MAX_WAIT must be at least 100ms")
	}
	log := telemetry.Logger(serviceName, cfg.LogLevel)
	slog.SetDefault(log)
	log.Info("starting", "config", config.LogValue(cfg))
	defer log.Info("stopped")

	// -------------------------------------------------------------------------------------
	// Tracing and metrics

	shutdownTracing, err := telemetry.Setup(ctx, telemetry.Options{
		ServiceName: serviceName, OTLPEndpoint: cfg.OTLPEndpoint, SampleRatio: cfg.TraceSampleRatio,
	})
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(sctx); err != nil {
			log.Warn("flush traces", "err", err)
		}
	}()

	registry := telemetry.NewRegistry()
	buildinfo.Register(registry, serviceName)
	ready := new(telemetry.Readiness) // /readyz: the gRPC server's overall health, once it exists
	if _, err := telemetry.ServeMetrics(ctx, cfg.MetricsAddr, registry, ready, log); err != nil {
		return err
	}

	// -------------------------------------------------------------------------------------
	// Event store and read models

	session, err := cql.Connect(cql.SessionConfigFrom(cfg.CQL))
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer session.Close()
	// History and state at a point decrypt customers' personal data through customer_keys.
	events := codec.NewRegistry()
	keys, err := pii.Setup(session, cfg.PII, events)
	if err != nil {
		return fmt.Errorf("personal data encryption: %w", err)
	}
	log.Info("personal data encryption", "enabled", keys.Enabled())
	store := cql.NewEventStore(session, events, cql.Options{})
	readModels := readmodel.NewStore(session, readmodel.Options{})
	probe := storage.Probe(store, readModels)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = probe(pctx)
	cancel()
	if err != nil {
		return fmt.Errorf("database does not answer (is keyspace %s migrated? run migrate): %w", cfg.CQL.Keyspace, err)
	}

	// -------------------------------------------------------------------------------------
	// Use cases

	svc := app.NewService(storage.NewReadModel(readModels), store, app.Options{
		MaxWait: cfg.MaxWait,
		Metrics: app.NewMetrics(registry),
		Logger:  log,
	})

	// -------------------------------------------------------------------------------------
	// gRPC server: SERVING from the start (the database answered above), NOT_SERVING while it
	// does not answer and from the start of the graceful stop.

	sec, err := grpcx.LoadSecurity(cfg.GRPC)
	if err != nil {
		return fmt.Errorf("grpc security: %w", err)
	}
	srv := grpcapi.NewServer(svc, grpcx.ServerOptions{
		Logger: log, Registry: registry, ServiceName: serviceName, ShutdownTimeout: cfg.ShutdownTimeout, Security: sec,
	})
	ln, err := srv.Listen(cfg.GRPCAddr)
	if err != nil {
		return err
	}
	ready.Set(srv.Ready)
	go grpcapi.WatchHealth(ctx, srv.Health, probe, healthInterval, log)

	err = srv.ServeListener(ctx, ln) // returns once stopped (ctx ended, drained) or failed
	log.Info("shut down")
	return err
}
