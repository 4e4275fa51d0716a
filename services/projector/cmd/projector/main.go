// Command projector runs the ordersys projector: it consumes the order-events and
// customer-events topics in consumer groups and builds the read models the query service serves
// (order_read_model, orders_by_customer, orders_by_status, customer_read_model; see
// docs/read-models.md). It serves gRPC health and reflection (NOT_SERVING while Cassandra or
// Kafka is unreachable) and Prometheus metrics.
//
// Usage:
//
//	projector                       run the projector (also: projector serve)
//	projector rebuild [-source topics|store] <projection>
//	                                replay a projection (orders or customers) into a fresh table
//	                                version, from the topics or from the event store, and switch
//	                                readers to it once it has caught up
//	projector versions              print the table versions of every projection
//
// Configuration comes from ORDERSYS_* environment variables (docs/configuration.md);
// ORDERSYS_PROJECTOR_GROUP (default ordersys-projector) prefixes the consumer groups, one per
// projection and table version: <group>.<projection>.v<N>.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/ordersys/ordersys/pkg/bootstrap"
	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/pkg/telemetry"
	"github.com/ordersys/ordersys/services/projector/internal/app"
	"github.com/ordersys/ordersys/services/projector/internal/server"
)

// usage is what --help prints above the configuration.
const usage = "usage: projector [serve] | projector rebuild [-source topics|store] [-max-lag N] <orders|customers> | projector versions\n\nBuilds the read models from the event topics (a rebuild also from the event store)."

func main() {
	defaults := server.Defaults()
	bootstrap.Main(server.ServiceName, usage, &defaults, run)
}

// run dispatches the subcommand.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return bootstrap.ServeFunc(server.ServiceName, server.Defaults, server.Run)(ctx, args, stdout)
	case "rebuild":
		return rebuild(ctx, args, stdout)
	case "versions":
		cfg, err := bootstrap.LoadConfig(server.Defaults())
		if err != nil {
			return err
		}
		return server.Versions(ctx, cfg, stdout)
	default:
		return fmt.Errorf("unknown command %q (want serve, rebuild or versions)", cmd)
	}
}

// rebuild runs `projector rebuild <projection>`.
func rebuild(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("rebuild", flag.ContinueOnError)
	maxLag := fs.Int64("max-lag", 0, "messages not yet processed at which the new version counts as caught up")
	sourceName := fs.String("source", string(app.SourceEventStore), "where the history is read from: store (the event store, walked by token ranges), or topics (only as far back as their retention)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: projector rebuild [-source topics|store] [-max-lag N] <%s|%s>", readmodel.ProjectionOrders, readmodel.ProjectionCustomers)
	}
	source, err := app.ParseRebuildSource(*sourceName)
	if err != nil {
		return err
	}
	if _, err := readmodel.ProjectionTables(fs.Arg(0)); err != nil {
		return err
	}
	cfg, err := bootstrap.LoadConfig(server.Defaults())
	if err != nil {
		return err
	}
	log := telemetry.Logger(server.ServiceName, cfg.LogLevel)
	slog.SetDefault(log)
	return server.Rebuild(ctx, cfg, log, fs.Arg(0), app.RebuildOptions{MaxLag: *maxLag, Source: source}, stdout)
}
