// Command command runs the ordersys command service: the write side, serving
// orders.v1.OrderCommandService and orders.v1.CustomerCommandService over gRPC (with health and
// reflection) and Prometheus metrics over HTTP, appending events to the CQL event store.
//
// Configuration comes from ORDERSYS_* environment variables (docs/DESIGN.md). With bearer
// tokens on (ORDERSYS_AUTH_JWKS_FILE) an event's user is the token's subject; with them off (a
// developer machine) it is the caller's x-user-id request metadata, which nothing checks: run
// it that way only behind a gateway that authenticates callers and sets that key
// (docs/security.md).
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
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/ordersys/ordersys/pkg/pii"
	"github.com/ordersys/ordersys/pkg/telemetry"
	"github.com/ordersys/ordersys/services/command/internal/app"
	"github.com/ordersys/ordersys/services/command/internal/grpcapi"
	"github.com/ordersys/ordersys/services/command/internal/storage"
)

// serviceName names the service in logs, traces and metrics.
const serviceName = "command"

// healthInterval is how often the event store is probed for the health status.
const healthInterval = 5 * time.Second

// Config is the command service's configuration.
type Config struct {
	config.Common
	// GRPC is the gRPC server's TLS, tokens and request bounds.
	GRPC config.GRPCServer
	// PII is the encryption of customers' personal data.
	PII config.PII
	// SnapshotEvery takes a snapshot of an aggregate every that many events (0 disables).
	SnapshotEvery int `env:"ORDERSYS_SNAPSHOT_EVERY" default:"100"`
	// MaxRetries bounds how often a command that lost a race is decided again.
	MaxRetries int `env:"ORDERSYS_COMMAND_MAX_RETRIES" default:"5"`
	// DedupTTL is how long command ids (and rejected command ids) are remembered.
	DedupTTL time.Duration `env:"ORDERSYS_DEDUP_TTL" default:"24h"`
	// DedupMaxCommands is how many command ids one aggregate remembers at most: recording one
	// more forgets the oldest.
	DedupMaxCommands int `env:"ORDERSYS_DEDUP_MAX_COMMANDS" default:"1000"`
	// OrderTopic is the topic written into the outbox rows of Order events (the relay publishes
	// each row to the topic it names).
	OrderTopic string `env:"ORDERSYS_ORDER_TOPIC" default:"order-events"`
	// CustomerTopic is the topic written into the outbox rows of Customer events.
	CustomerTopic string `env:"ORDERSYS_CUSTOMER_TOPIC" default:"customer-events"`
}

// usage is what --help prints above the configuration.
const usage = "usage: command\n\nThe gRPC command service (orders.v1.OrderCommandService, CustomerCommandService)."

func main() {
	if config.InfoRequested(os.Args[1:], os.Stdout, serviceName, usage, &Config{Common: config.Defaults(config.CommandGRPCAddr, config.CommandMetricsAddr)}) {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "command: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	// -------------------------------------------------------------------------------------
	// Configuration and logging

	cfg := Config{Common: config.Defaults(config.CommandGRPCAddr, config.CommandMetricsAddr)}
	if err := config.Load(&cfg); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if cfg.SnapshotEvery < 0 || cfg.MaxRetries < 0 || cfg.DedupTTL < time.Second {
		return errors.New("configuration: ORDERSYS_SNAPSHOT_EVERY and ORDERSYS_COMMAND_MAX_RETRIES must not be negative, ORDERSYS_DEDUP_TTL must be at least 1s")
	}
	if cfg.DedupMaxCommands < 1 {
		return fmt.Errorf("configuration: ORDERSYS_DEDUP_MAX_COMMANDS must be at least 1, got %d", cfg.DedupMaxCommands)
	}
	if cfg.OrderTopic == "" || cfg.CustomerTopic == "" {
		return errors.New("configuration: ORDERSYS_ORDER_TOPIC and ORDERSYS_CUSTOMER_TOPIC must not be empty")
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
	// Event store

	session, err := cql.Connect(cql.SessionConfigFrom(cfg.CQL))
	if err != nil {
		return fmt.Errorf("event store: %w", err)
	}
	defer session.Close()
	// The cluster's clock decides where outbox rows go (the relay reads them by the same clock).
	clock := cql.NewClusterClock(session, nil)
	// Personal data of customers: sealed with each customer's data key when a KEK is configured.
	events := codec.NewRegistry()
	keys, err := pii.Setup(session, cfg.PII, events)
	if err != nil {
		return fmt.Errorf("personal data encryption: %w", err)
	}
	log.Info("personal data encryption", "enabled", keys.Enabled())
	if kek := keys.KEK(); kek != nil && kek.Keys() > 1 {
		// A KEK rotation is under way (docs/privacy.md): re-wrap the data keys that an older KEK
		// key wrapped with the new primary, in the background (every replica may; rows change
		// only if still as read).
		go func() {
			n, err := keys.Rewrap(ctx)
			log.Info("personal data: data keys re-wrapped with the primary KEK key", "rewrapped", n, "primary_key_id", kek.PrimaryKeyID(), "err", err)
		}()
	}
	var customerSnapshots es.SnapshotCodec = codec.CustomerSnapshotCodec{}
	if keys.Enabled() {
		customerSnapshots = codec.SealedCustomerSnapshots{Keys: keys}
	}
	store := cql.NewEventStore(session, events, cql.Options{
		CommandTTL: cfg.DedupTTL,
		Topics:     map[string]string{"Order": cfg.OrderTopic, "Customer": cfg.CustomerTopic},
		Now:        clock.Now,
	})
	probe := func(ctx context.Context) error {
		_, err := store.Head(ctx, ids.Probe)
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = probe(pctx)
	cancel()
	if err != nil {
		return fmt.Errorf("event store does not answer (is keyspace %s migrated? run migrate): %w", cfg.CQL.Keyspace, err)
	}
	if err := clock.Sync(ctx); err != nil {
		log.Warn("cluster clock: not synced yet, using the local clock", "err", err)
	} else {
		log.Info("cluster clock synced", "offset", clock.Offset())
	}
	go clock.Run(ctx, cql.ClusterClockSyncInterval)

	// -------------------------------------------------------------------------------------
	// Use cases

	svc := app.NewService(store, app.Options{
		SnapshotEvery:         cfg.SnapshotEvery,
		MaxRetries:            cfg.MaxRetries,
		MaxRememberedCommands: cfg.DedupMaxCommands,
		Rejections:            storage.NewRejectionLog(cql.NewRejections(session, cfg.DedupTTL)),
		Metrics:               app.NewMetrics(registry),
		Logger:                log,
	})
	customers := app.NewCustomerHandler(svc, customerSnapshots)
	orders := app.NewOrderHandler(svc, codec.OrderSnapshotCodec{}, customers)

	// -------------------------------------------------------------------------------------
	// gRPC server: SERVING from the start (the store answered above), NOT_SERVING while the
	// store does not answer and from the start of the graceful stop.

	sec, err := grpcx.LoadSecurity(cfg.GRPC)
	if err != nil {
		return fmt.Errorf("grpc security: %w", err)
	}
	srv := grpcapi.NewServer(orders, customers, keys, grpcx.ServerOptions{
		Logger: log, Registry: registry, ShutdownTimeout: cfg.ShutdownTimeout, Security: sec, // log already names the service
	})
	ln, err := srv.Listen(cfg.GRPCAddr)
	if err != nil {
		return err
	}
	ready.Set(srv.Ready)
	go grpcapi.WatchHealth(ctx, srv.Health, probe, healthInterval, log)

	serveErr := srv.ServeListener(ctx, ln) // returns once stopped (ctx ended) or failed
	log.Info("shutting down")

	// -------------------------------------------------------------------------------------
	// Shutdown: the gRPC server has drained; let background snapshots and the outbox rows of
	// the last appends finish (what does not, recovery finishes from the intents).

	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := svc.Wait(wctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	if err := store.Close(wctx); err != nil {
		log.Warn("shutdown: appends left to recovery", "err", err)
	}
	return serveErr
}
