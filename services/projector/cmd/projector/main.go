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
// Configuration comes from ORDERSYS_* environment variables (docs/DESIGN.md);
// ORDERSYS_PROJECTOR_GROUP (default ordersys-projector) prefixes the consumer groups, one per
// projection and table version: <group>.<projection>.v<N>.
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

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/buildinfo"
	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/config"
	"github.com/ordersys/ordersys/pkg/cql"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/grpcx"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/pii"
	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/pkg/retry"
	"github.com/ordersys/ordersys/pkg/telemetry"
	"github.com/ordersys/ordersys/services/projector/internal/projector"
)

// serviceName names the service in logs, traces and metrics.
const serviceName = "projector"

// healthInterval is how often Cassandra and Kafka are probed for the health status.
const healthInterval = 5 * time.Second

// progressInterval is how often the admin service samples the consumer groups' positions, the
// base of the rate `ordersysctl projector status` shows.
const progressInterval = 10 * time.Second

// Config is the projector's configuration.
type Config struct {
	config.Common
	// GRPC is the gRPC server's TLS, tokens and request bounds.
	GRPC config.GRPCServer
	// Kafka holds the brokers and their TLS and SASL settings.
	Kafka config.Kafka
	// PII is the encryption of customers' personal data (the projector decrypts).
	PII config.PII
	// Group prefixes the consumer groups.
	Group string `env:"ORDERSYS_PROJECTOR_GROUP" default:"ordersys-projector"`
	// OrderTopic carries Order events (the same variable as the command service and the relay).
	OrderTopic string `env:"ORDERSYS_ORDER_TOPIC" default:"order-events"`
	// CustomerTopic carries Customer events.
	CustomerTopic string `env:"ORDERSYS_CUSTOMER_TOPIC" default:"customer-events"`
	// RetireGrace is how long a formerly active version is still written after a rebuild switched
	// readers away from it.
	RetireGrace time.Duration `env:"ORDERSYS_PROJECTOR_RETIRE_GRACE" default:"30s"`
	// Partitions and ReplicationFactor are used to create the dead-letter topics, and the
	// order and customer topics when the projector finds them missing (as the relay would).
	Partitions int `env:"ORDERSYS_KAFKA_PARTITIONS" default:"6"`
	// ReplicationFactor of the topics the projector creates.
	ReplicationFactor int `env:"ORDERSYS_KAFKA_REPLICATION_FACTOR" default:"1"`
	// RetentionMs is the retention.ms of the order and customer topics when the projector creates
	// them (the relay's setting: 7 days by default, -1 keeps every event).
	RetentionMs int64 `env:"ORDERSYS_KAFKA_RETENTION_MS" default:"604800000"`
}

// usage is what --help prints above the configuration.
const usage = "usage: projector [serve] | projector rebuild [-source topics|store] [-max-lag N] <orders|customers> | projector versions\n\nBuilds the read models from the event topics (a rebuild also from the event store)."

func main() {
	if config.InfoRequested(os.Args[1:], os.Stdout, serviceName, usage, &Config{Common: config.Defaults(config.ProjectorGRPCAddr, config.ProjectorMetricsAddr)}) {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "projector: %v\n", err)
		os.Exit(1)
	}
}

// run dispatches the subcommand.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx)
	case "rebuild":
		return rebuild(ctx, args, stdout)
	case "versions":
		return versions(ctx, stdout)
	default:
		return fmt.Errorf("unknown command %q (want serve, rebuild or versions)", cmd)
	}
}

// loadConfig reads the configuration, builds the Kafka cluster of its settings and sets up
// logging.
func loadConfig() (Config, okafka.Cluster, *slog.Logger, error) {
	cfg := Config{Common: config.Defaults(config.ProjectorGRPCAddr, config.ProjectorMetricsAddr)}
	if err := config.Load(&cfg); err != nil {
		return cfg, okafka.Cluster{}, nil, fmt.Errorf("configuration: %w", err)
	}
	if cfg.Group == "" || cfg.OrderTopic == "" || cfg.CustomerTopic == "" || cfg.Partitions < 1 || cfg.ReplicationFactor < 1 {
		return cfg, okafka.Cluster{}, nil, errors.New("configuration: ORDERSYS_PROJECTOR_GROUP and the topics must not be empty, partitions and replication factor at least 1")
	}
	if cfg.RetentionMs != -1 && cfg.RetentionMs < 1 {
		return cfg, okafka.Cluster{}, nil, errors.New("configuration: ORDERSYS_KAFKA_RETENTION_MS must be -1 (keep every event) or positive")
	}
	kc, err := okafka.ClusterFrom(cfg.Kafka)
	if err != nil {
		return cfg, kc, nil, fmt.Errorf("configuration: %w", err)
	}
	log := telemetry.Logger(serviceName, cfg.LogLevel)
	slog.SetDefault(log)
	return cfg, kc, log, nil
}

// connect opens the CQL session and checks the read-model schema is there.
func connect(ctx context.Context, cfg Config) (*gocql.Session, error) {
	session, err := cql.Connect(cql.SessionConfigFrom(cfg.CQL))
	if err != nil {
		return nil, fmt.Errorf("cassandra: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := readmodel.LoadVersions(pctx, session, readmodel.ProjectionOrders); err != nil {
		session.Close()
		return nil, fmt.Errorf("read models do not answer (is keyspace %s migrated? run migrate): %w", cfg.CQL.Keyspace, err)
	}
	return session, nil
}

// warnLegacyWrites logs an error for each projection whose active version the first release
// wrote (readmodel.LegacyWrites): this release's writes cannot replace those rows until it is
// rebuilt.
func warnLegacyWrites(ctx context.Context, session *gocql.Session, log *slog.Logger) {
	for _, p := range readmodel.Projections() {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		legacy, err := readmodel.LegacyWrites(lctx, session, p)
		cancel()
		switch {
		case err != nil:
			log.Warn("cannot check how the read models were written", "projection", p, "err", err)
		case legacy:
			log.Error("the read models were written by the first release, whose rows this release's writes cannot replace: "+
				"rebuild them now (ordersysctl projector rebuild -source store "+p+"; docs/deploy.md)", "projection", p)
		}
	}
}

// deps builds the projector's dependencies on an open session.
func deps(kc okafka.Cluster, session *gocql.Session, cfg config.PII, metrics *projector.Metrics, log *slog.Logger) (projector.Deps, error) {
	registry := codec.NewRegistry()
	// Customer events carry personal data sealed with each customer's data key: opened through
	// customer_keys when a KEK is configured (an erased customer's come out as erased).
	keys, err := pii.Setup(session, cfg, registry)
	if err != nil {
		return projector.Deps{}, fmt.Errorf("personal data encryption: %w", err)
	}
	log.Info("personal data encryption", "enabled", keys.Enabled())
	return projector.Deps{
		Session:     session,
		Events:      cql.NewEventStore(session, registry, cql.Options{}),
		Registry:    registry,
		DeadLetters: projector.NewDeadLetters(kc, session),
		Metrics:     metrics,
		Logger:      log,
	}, nil
}

func coreConfig(cfg Config, kc okafka.Cluster) projector.Config {
	return projector.Config{
		Kafka:         kc,
		GroupBase:     cfg.Group,
		OrderTopic:    cfg.OrderTopic,
		CustomerTopic: cfg.CustomerTopic,
		RetireGrace:   cfg.RetireGrace,
	}
}

// serve runs the projector until ctx ends.
func serve(ctx context.Context) error {
	// -------------------------------------------------------------------------------------
	// Configuration, logging, tracing and metrics

	cfg, kc, log, err := loadConfig()
	if err != nil {
		return err
	}
	log.Info("starting", "config", config.LogValue(cfg))
	defer log.Info("stopped")

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
	// Cassandra (read models, event store for healing gaps) and Kafka (dead-letter topics)

	session, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer session.Close()
	warnLegacyWrites(ctx, session, log)
	d, err := deps(kc, session, cfg.PII, projector.NewMetrics(registry), log)
	if err != nil {
		return err
	}
	defer d.DeadLetters.Close()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	if err := okafka.EnsureTopics(tctx, kc,
		okafka.TopicSpec{Name: projector.DLQTopic(cfg.OrderTopic), Partitions: cfg.Partitions, ReplicationFactor: cfg.ReplicationFactor},
		okafka.TopicSpec{Name: projector.DLQTopic(cfg.CustomerTopic), Partitions: cfg.Partitions, ReplicationFactor: cfg.ReplicationFactor}); err != nil {
		log.Warn("dead-letter topics not created; the first dead letter will try again", "err", err)
	}
	cancel()

	// -------------------------------------------------------------------------------------
	// gRPC server (health, reflection, orders.v1.ProjectorAdminService) and the health watch

	sec, err := grpcx.LoadSecurity(cfg.GRPC)
	if err != nil {
		return fmt.Errorf("grpc security: %w", err)
	}
	srv := grpcx.NewServer(grpcx.ServerOptions{
		Logger: log, Registry: registry, ServiceName: serviceName, ShutdownTimeout: cfg.ShutdownTimeout, Security: sec,
	})
	ln, err := srv.Listen(cfg.GRPCAddr)
	if err != nil {
		return err
	}
	ready.Set(srv.Ready)
	go projector.WatchHealth(ctx, session, kc, srv.Health, []string{""}, healthInterval, log)
	adminPub := okafka.NewPublisher(okafka.PublisherConfig{Cluster: kc})
	defer adminPub.Close()
	d.Decode = grpcx.NewDecodeWatch(registry, "ordersys_projector", srv.Health, log,
		projector.ReasonUndecodable, projector.ReasonUnknownEvent)
	d.Stalls = projector.NewStalls(srv.Health, log) // health service ordersys.projector.progress
	// Rebuilds started through the admin service run on the server's lifetime, not the call's.
	rebuilds := projector.NewRebuilds(ctx, coreConfig(cfg, kc), d, projector.RebuildOptions{})
	ordersv1.RegisterProjectorAdminServiceServer(srv, projector.NewAdminServer(session, adminPub, cfg.OrderTopic, cfg.CustomerTopic).
		WithRebuilds(rebuilds).MeasureProgress(ctx, coreConfig(cfg, kc), progressInterval))
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ServeListener(ctx, ln) }()

	// -------------------------------------------------------------------------------------
	// The topics the projections consume: they must exist, every partition led, before the
	// consumer groups join. A group whose leader assigns partitions while a topic is missing or
	// still being created can stay without any partition (kafka-go's partition watcher takes its
	// baseline after that assignment), and a broker that auto-creates topics would create them
	// on the consumer's metadata request with its own defaults. So the projector creates them
	// with the relay's spec when they are missing (whoever comes first; an existing topic is
	// left as it is).

	if err := ensureSourceTopics(ctx, cfg, kc, log); err != nil {
		log.Info("shutting down", "err", err)
		return <-serveErr
	}

	// -------------------------------------------------------------------------------------
	// Projections: one consumer group per projection and table version

	sup := projector.NewSupervisor(coreConfig(cfg, kc), d)
	supErr := sup.Run(ctx) // returns once ctx ended and every consumer committed and left
	log.Info("shutting down")
	return errors.Join(supErr, <-serveErr)
}

// ensureSourceTopics creates the order and customer topics when missing and waits until every
// partition has a leader, retrying until it works; it fails only when ctx ends.
func ensureSourceTopics(ctx context.Context, cfg Config, kc okafka.Cluster, log *slog.Logger) error {
	var specs []okafka.TopicSpec
	for _, t := range []string{cfg.OrderTopic, cfg.CustomerTopic} {
		specs = append(specs, okafka.EventTopic(t, cfg.Partitions, cfg.ReplicationFactor, cfg.RetentionMs))
	}
	err := retry.Until(ctx, 10*time.Second, func() error {
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return okafka.EnsureTopics(tctx, kc, specs...)
	}, func(attempt int, err error, wait time.Duration) {
		log.Warn("topics not ready, the projections wait", "topics", []string{cfg.OrderTopic, cfg.CustomerTopic}, "attempt", attempt,
			"wait", wait, "err", err)
	})
	if err != nil {
		return fmt.Errorf("topics %s, %s: %w", cfg.OrderTopic, cfg.CustomerTopic, err)
	}
	return nil
}

// rebuild runs `projector rebuild <projection>`.
func rebuild(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("rebuild", flag.ContinueOnError)
	maxLag := fs.Int64("max-lag", 0, "messages not yet processed at which the new version counts as caught up")
	sourceName := fs.String("source", string(projector.SourceEventStore), "where the history is read from: store (the event store, walked by token ranges), or topics (only as far back as their retention)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: projector rebuild [-source topics|store] [-max-lag N] <%s|%s>", readmodel.ProjectionOrders, readmodel.ProjectionCustomers)
	}
	source, err := projector.ParseRebuildSource(*sourceName)
	if err != nil {
		return err
	}
	projection := fs.Arg(0)
	if _, err := readmodel.ProjectionTables(projection); err != nil {
		return err
	}
	cfg, kc, log, err := loadConfig()
	if err != nil {
		return err
	}
	session, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer session.Close()
	d, err := deps(kc, session, cfg.PII, projector.NewMetrics(nil), log)
	if err != nil {
		return err
	}
	defer d.DeadLetters.Close()
	v, err := projector.Rebuild(ctx, coreConfig(cfg, kc), d, projection, projector.RebuildOptions{
		MaxLag: *maxLag, Source: source,
		Progress: func(p projector.RebuildProgress) { fmt.Fprintln(stdout, p) },
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rebuild of %s done: version %d is active\n", projection, v)
	return nil
}

// versions runs `projector versions`.
func versions(ctx context.Context, stdout io.Writer) error {
	cfg, _, _, err := loadConfig()
	if err != nil {
		return err
	}
	session, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer session.Close()
	for _, p := range readmodel.Projections() {
		v, err := readmodel.LoadVersions(ctx, session, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%-10s active=%d building=%d previous=%d latest=%d switched_at=%s\n",
			p, v.Active, v.Building, v.Previous, v.Latest, v.SwitchedAt.Format(time.RFC3339))
	}
	return nil
}
