// Package server is the projector's composition root: its configuration and Run, which builds
// every dependency from it (metrics, the CQL session, the dead-letter topics, the gRPC server
// with the admin service and the health watch, the consumer groups) and serves until the context
// ends; Rebuild and Versions are the one-shot subcommands on the same dependencies. The
// binary's main calls them. Adapters.Deps plugs the adapters (internal/store,
// internal/consumer, internal/kafkaadmin, the event store) into the ports of internal/app.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/bootstrap"
	"github.com/ordersys/ordersys/pkg/config"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/grpcx"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/pkg/retry"
	"github.com/ordersys/ordersys/services/projector/internal/app"
	"github.com/ordersys/ordersys/services/projector/internal/consumer"
	"github.com/ordersys/ordersys/services/projector/internal/grpcapi"
	"github.com/ordersys/ordersys/services/projector/internal/kafkaadmin"
	"github.com/ordersys/ordersys/services/projector/internal/store"
)

// ServiceName names the service in logs, traces and metrics.
const ServiceName = "projector"

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
	// Topics are the event topics consumed (the same variables as the command service's and the
	// relay's).
	config.Topics
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

// Defaults returns the configuration before the environment is read.
func Defaults() Config {
	return Config{Common: config.Defaults(config.ProjectorGRPCAddr, config.ProjectorMetricsAddr)}
}

// Validate checks the values that have no sensible meaning when out of range.
func (c Config) Validate() error {
	if c.Group == "" || c.OrderTopic == "" || c.CustomerTopic == "" || c.Partitions < 1 || c.ReplicationFactor < 1 {
		return errors.New("ORDERSYS_PROJECTOR_GROUP and the topics must not be empty, partitions and replication factor at least 1")
	}
	if c.RetentionMs != -1 && c.RetentionMs < 1 {
		return errors.New("ORDERSYS_KAFKA_RETENTION_MS must be -1 (keep every event) or positive")
	}
	_, err := okafka.ClusterFrom(c.Kafka)
	return err
}

// Run runs the projector until ctx ends: metrics, the gRPC server (health, reflection,
// orders.v1.ProjectorAdminService), the health watch of Cassandra and Kafka, and one consumer
// group per projection and table version. It returns once every consumer committed and left.
func Run(ctx context.Context, cfg Config, log *slog.Logger, lns bootstrap.Listeners) error {
	kc, err := okafka.ClusterFrom(cfg.Kafka)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}

	// -------------------------------------------------------------------------------------
	// Metrics, Cassandra (read models, event store for healing gaps) and Kafka (dead-letter
	// topics)

	base, err := bootstrap.Open(ctx, ServiceName, cfg.Common, lns, log, bootstrap.ConnectOptions{What: "cassandra"})
	if err != nil {
		return err
	}
	defer base.Close()
	metrics, session := base.Metrics, base.Session
	if err := checkSchema(ctx, cfg, session); err != nil {
		return err
	}
	warnLegacyWrites(ctx, session, log)
	d, err := adapters(kc, session, cfg.PII, consumer.NewMetrics(metrics.Registry), log)
	if err != nil {
		return err
	}
	defer d.DeadLetters.Close()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	if err := okafka.EnsureTopics(tctx, kc,
		okafka.TopicSpec{Name: consumer.DLQTopic(cfg.OrderTopic), Partitions: cfg.Partitions, ReplicationFactor: cfg.ReplicationFactor},
		okafka.TopicSpec{Name: consumer.DLQTopic(cfg.CustomerTopic), Partitions: cfg.Partitions, ReplicationFactor: cfg.ReplicationFactor}); err != nil {
		log.Warn("dead-letter topics not created; the first dead letter will try again", "err", err)
	}
	cancel()

	// -------------------------------------------------------------------------------------
	// gRPC server (health, reflection, orders.v1.ProjectorAdminService) and the health watch

	srv, ln, err := bootstrap.NewServer(ServiceName, cfg.Common, cfg.GRPC, metrics, log, lns, grpcx.NewServer)
	if err != nil {
		return err
	}
	go grpcx.WatchHealth(ctx, srv.Health, grpcx.HealthWatch{Services: []string{""}, Interval: healthInterval, Logger: log,
		Probes: Probes(session, kc)})
	adminPub := okafka.NewPublisher(okafka.PublisherConfig{Cluster: kc})
	defer adminPub.Close()
	d.Decode = grpcx.NewDecodeWatch(metrics.Registry, "ordersys_projector", srv.Health, log,
		app.ReasonUndecodable, app.ReasonUnknownEvent)
	d.Stalls = consumer.NewStalls(srv.Health, log) // health service ordersys.projector.progress
	core := coreConfig(cfg)
	// Rebuilds started through the admin service run on the server's lifetime, not the call's.
	rebuilds := app.NewRebuilds(ctx, core, d.Deps(), app.RebuildOptions{})
	admin := app.NewAdmin(store.New(session)).WithRebuilds(rebuilds).MeasureProgress(ctx, core, d.Groups(), progressInterval)
	ordersv1.RegisterProjectorAdminServiceServer(srv,
		grpcapi.NewAdminServer(admin, cql.NewDeadLetters(session), adminPub, cfg.OrderTopic, cfg.CustomerTopic))
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

	sup := app.NewSupervisor(core, d.Deps())
	supErr := sup.Run(ctx) // returns once ctx ended and every consumer committed and left
	log.Info("shutting down")
	return errors.Join(supErr, <-serveErr)
}

// Probes are the projector's dependencies for its health: Cassandra and Kafka.
func Probes(s *gocql.Session, kc okafka.Cluster) []grpcx.Probe {
	return []grpcx.Probe{
		{Name: "cassandra", Check: func(ctx context.Context) error { return cql.Ping(ctx, s) }},
		{Name: "kafka", Check: func(ctx context.Context) error { return okafka.Ping(ctx, kc) }},
	}
}

// connect opens the CQL session and checks the read-model schema is there.
func connect(ctx context.Context, cfg Config) (*gocql.Session, error) {
	session, err := bootstrap.ConnectCQL(ctx, cfg.CQL, bootstrap.ConnectOptions{What: "cassandra"})
	if err != nil {
		return nil, err
	}
	if err := checkSchema(ctx, cfg, session); err != nil {
		session.Close()
		return nil, err
	}
	return session, nil
}

// checkSchema checks that the read models answer (the keyspace is migrated).
func checkSchema(ctx context.Context, cfg Config, session *gocql.Session) error {
	return bootstrap.CheckSchema(ctx, cfg.CQL.Keyspace, "the read-model store", func(ctx context.Context) error {
		_, err := readmodel.LoadVersions(ctx, session, readmodel.ProjectionOrders)
		return err
	})
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

// Adapters are what the projections run on: the read-model store, the event store, Kafka and
// the consumers' dependencies. Deps plugs them into the ports of internal/app.
type Adapters struct {
	// Kafka is the cluster consumed (and holding the consumer groups).
	Kafka okafka.Cluster
	// Session is the CQL session on the ordersys keyspace (read models, projection versions).
	Session *gocql.Session
	// Events is the event store: it heals gaps, and a rebuild from the event store walks it.
	Events app.EventSource
	// Registry decodes and upcasts event payloads.
	Registry *es.Registry
	// DeadLetters receives poison messages.
	DeadLetters *consumer.DeadLetters
	// Metrics receives the counters.
	Metrics *consumer.Metrics
	// Decode reports, loudly, messages that cannot be decoded (nil: only the dead letter).
	Decode *grpcx.DecodeWatch
	// Stalls reports partitions that cannot progress on the health service
	// consumer.HealthServiceProgress (nil: only the metric).
	Stalls *consumer.Stalls
	// Logger receives progress and failures.
	Logger *slog.Logger
}

// Groups returns the consumer groups' offsets on the cluster (app.Groups).
func (a Adapters) Groups() kafkaadmin.Groups { return kafkaadmin.Groups{Cluster: a.Kafka} }

// Deps returns the use cases' dependencies on the adapters.
func (a Adapters) Deps() app.Deps {
	rm := store.New(a.Session)
	d := app.Deps{
		Versions: rm,
		Tables:   rm,
		Events:   a.Events,
		Registry: a.Registry,
		Consumers: consumer.Runner{Kafka: a.Kafka, Registry: a.Registry, DeadLetters: a.DeadLetters, Metrics: a.Metrics,
			Decode: a.Decode, Logger: a.Logger, Stalls: a.Stalls},
		Groups: a.Groups(),
		Logger: a.Logger,
	}
	if a.Metrics != nil {
		d.Applied = a.Metrics
	}
	return d
}

// adapters builds the projector's adapters on an open session.
func adapters(kc okafka.Cluster, session *gocql.Session, cfg config.PII, metrics *consumer.Metrics, log *slog.Logger) (Adapters, error) {
	// Customer events carry personal data sealed with each customer's data key: opened through
	// customer_keys when a KEK is configured (an erased customer's come out as erased).
	registry, _, err := bootstrap.PersonalData(session, cfg, log)
	if err != nil {
		return Adapters{}, err
	}
	return Adapters{
		Kafka:       kc,
		Session:     session,
		Events:      cql.NewEventStore(session, registry, cql.Options{}),
		Registry:    registry,
		DeadLetters: consumer.NewDeadLetters(kc, session),
		Metrics:     metrics,
		Logger:      log,
	}, nil
}

// coreConfig is the projections' part of the configuration.
func coreConfig(cfg Config) app.Config {
	return app.Config{
		GroupBase:     cfg.Group,
		OrderTopic:    cfg.OrderTopic,
		CustomerTopic: cfg.CustomerTopic,
		RetireGrace:   cfg.RetireGrace,
	}
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
