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
// Configuration comes from ORDERSYS_* environment variables (docs/configuration.md, docs/relay.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/ordersys/ordersys/pkg/bootstrap"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/app"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/server"
)

// usage is what --help prints above the configuration.
const usage = "usage: cdc-relay [serve] | cdc-relay dlq list|redrive ...\n\nPublishes the outbox to the event topics, in order per aggregate."

func main() {
	defaults := app.Defaults()
	bootstrap.Main(server.ServiceName, usage, &defaults, run)
}

func run(ctx context.Context, args []string, out io.Writer) error {
	// -------------------------------------------------------------------------------------
	// Configuration

	cfg, err := bootstrap.LoadConfig(app.Defaults())
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
	// Logging and tracing, then the relay until SIGINT or SIGTERM

	return bootstrap.Serve(ctx, server.ServiceName, cfg, server.Run)
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
