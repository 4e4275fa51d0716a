// Command cdc-relay publishes the ordersys outbox to Kafka: every committed event reaches the
// topic of its aggregate type (order-events, customer-events), per aggregate in sequence order,
// at least once. It reads the outbox by polling (any CQL store) or from ScyllaDB's CDC log,
// chosen by ORDERSYS_RELAY_SOURCE. Several instances may run: the holder of a lease publishes,
// the others take over when it dies. docs/relay.md describes the design.
//
// Usage:
//
//	cdc-relay                        run the relay (gRPC health on 127.0.0.1:50053, metrics on :9103)
//	cdc-relay dlq list [-topic T] [-limit N]
//	                                 list dead letters (all configured topics unless -topic)
//	cdc-relay dlq redrive [-topic T] ID
//	                                 publish dead letter ID again to its topic and mark it re-driven
//
// Configuration comes from ORDERSYS_* environment variables (docs/DESIGN.md, docs/relay.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ordersys/ordersys/pkg/config"
	"github.com/ordersys/ordersys/pkg/telemetry"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/app"
)

// usage is what --help prints above the configuration.
const usage = "usage: cdc-relay [serve] | cdc-relay dlq list|redrive ...\n\nPublishes the outbox to the event topics, in order per aggregate."

func main() {
	if config.InfoRequested(os.Args[1:], os.Stdout, app.ServiceName, usage, &app.Config{Common: config.Defaults(config.RelayGRPCAddr, config.RelayMetricsAddr)}) {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "cdc-relay: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	// -------------------------------------------------------------------------------------
	// Configuration

	cfg, err := app.LoadConfig()
	if err != nil {
		return err
	}
	if len(args) > 0 {
		switch args[0] {
		case "dlq":
			return dlq(ctx, cfg, args[1:], out)
		case "serve":
		default:
			return fmt.Errorf("unknown command %q (want no argument, serve, or dlq)", args[0])
		}
	}

	// -------------------------------------------------------------------------------------
	// Logging and tracing

	log := telemetry.Logger(app.ServiceName, cfg.LogLevel)
	slog.SetDefault(log)
	log.Info("starting", "config", config.LogValue(cfg))
	defer log.Info("stopped")
	shutdownTracing, err := telemetry.Setup(ctx, telemetry.Options{
		ServiceName: app.ServiceName, OTLPEndpoint: cfg.OTLPEndpoint, SampleRatio: cfg.TraceSampleRatio,
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

	// -------------------------------------------------------------------------------------
	// The relay, until SIGINT or SIGTERM; then a graceful stop bounded by the shutdown timeout
	// (in-flight publishes are abandoned unacknowledged and published again by the next leader).

	return app.Serve(ctx, cfg, log, app.Listeners{})
}

// dlq runs the dead-letter subcommands.
func dlq(ctx context.Context, cfg app.Config, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: cdc-relay dlq list [-topic T] [-limit N] | cdc-relay dlq redrive [-topic T] ID")
	}
	fs := flag.NewFlagSet("dlq "+args[0], flag.ContinueOnError)
	topic := fs.String("topic", "", "original topic (default: every configured topic)")
	limit := fs.Int("limit", 100, "most dead letters listed per topic")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	admin, closeAdmin, err := app.NewAdmin(cfg)
	if err != nil {
		return err
	}
	defer closeAdmin()
	switch args[0] {
	case "list":
		_, err := admin.List(ctx, out, *topic, *limit)
		return err
	case "redrive":
		if fs.NArg() != 1 {
			return errors.New("usage: cdc-relay dlq redrive [-topic T] ID")
		}
		return admin.Redrive(ctx, out, *topic, fs.Arg(0))
	}
	return fmt.Errorf("unknown dlq command %q (want list or redrive)", args[0])
}
