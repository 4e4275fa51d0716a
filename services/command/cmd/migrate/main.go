// Command migrate creates the ordersys keyspace if needed and applies the CQL schema migrations
// of the chosen profile (portable for Apache Cassandra, scylla for ScyllaDB), then logs the
// schema version reached. It exits non-zero on any failure, so it can gate a deployment.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/config"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/pii"
	"github.com/ordersys/ordersys/pkg/pii/reseal"
	"github.com/ordersys/ordersys/pkg/telemetry"
)

// Config is the migration job's configuration.
type Config struct {
	// CQL says where the cluster and the keyspace are.
	CQL config.CQL
	// Profile is the schema variant: portable or scylla.
	Profile string `env:"ORDERSYS_CQL_PROFILE" default:"portable"`
	// Replication is the keyspace replication as a CQL map literal (empty: SimpleStrategy, RF 1).
	Replication string `env:"ORDERSYS_CQL_REPLICATION"`
	// Timeout bounds the whole migration, including waiting for another migrate job's lease.
	Timeout time.Duration `env:"ORDERSYS_MIGRATE_TIMEOUT" default:"5m"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"ORDERSYS_LOG_LEVEL" default:"info"`
	// PII is the KEK that `migrate reseal-pii` seals the personal data of existing customers
	// with (the same file as the services'); the schema migration does not read it.
	PII config.PII
}

// usage is what --help prints above the configuration.
const usage = "usage: migrate [reseal-pii | backup FILE | restore FILE]\n\nCreates or upgrades the keyspace schema and exits (a deployment gate).\n" +
	"reseal-pii: after the schema, encrypt in place the personal data of the Customer events written\n" +
	"in clear before encryption (ORDERSYS_PII_KEK_FILE required; docs/privacy.md).\n" +
	"backup FILE: after the schema, write the event store, the rejected commands and the customers'\n" +
	"wrapped data keys to FILE (JSON lines, CQL's JSON form; docs/recovery.md).\n" +
	"restore FILE: after the schema, write a backup's rows into the keyspace, whose event store must\n" +
	"be empty; then re-publish and rebuild the read models (docs/recovery.md)."

func main() {
	if config.InfoRequested(os.Args[1:], os.Stdout, "migrate", usage, &Config{}) {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "migrate: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	// -------------------------------------------------------------------------------------
	// Configuration and logging

	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if cfg.Replication == "" {
		cfg.Replication = cql.DefaultReplication
	}
	profile := cql.Profile(cfg.Profile)
	if profile != cql.ProfilePortable && profile != cql.ProfileScylla {
		return fmt.Errorf("configuration: ORDERSYS_CQL_PROFILE=%q: want %q or %q", cfg.Profile, cql.ProfilePortable, cql.ProfileScylla)
	}
	job, file, err := parseArgs(os.Args[1:])
	if err != nil {
		return err
	}
	log := telemetry.Logger("migrate", cfg.LogLevel)
	slog.SetDefault(log)
	log.Info("starting", "config", config.LogValue(cfg))

	// -------------------------------------------------------------------------------------
	// Migration

	mctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	version, err := cql.Migrate(mctx, cql.MigrateConfig{
		Session:     cql.SessionConfigFrom(cfg.CQL),
		Profile:     profile,
		Replication: cfg.Replication,
		Logger:      log,
	})
	if err != nil {
		return fmt.Errorf("keyspace %s: %w", cfg.CQL.Keyspace, err)
	}
	log.Info("migration finished", "keyspace", cfg.CQL.Keyspace, "profile", profile, "version", version)
	switch job {
	case "reseal-pii":
		return resealPII(mctx, cfg, log)
	case "backup":
		return backup(ctx, cfg, version, file, log)
	case "restore":
		return restore(ctx, cfg, version, file, log)
	}
	return nil
}

// parseArgs returns the job after the migration ("": none) and its file.
func parseArgs(args []string) (job, file string, err error) {
	switch {
	case len(args) == 0:
		return "", "", nil
	case args[0] == "reseal-pii" && len(args) == 1:
		return args[0], "", nil
	case (args[0] == "backup" || args[0] == "restore") && len(args) == 2 && args[1] != "":
		return args[0], args[1], nil
	}
	return "", "", fmt.Errorf("arguments %q: %s", args, strings.SplitN(usage, "\n", 2)[0])
}

// resealPII seals the personal data that existing customers' events hold in clear (reseal.Run).
func resealPII(ctx context.Context, cfg Config, log *slog.Logger) error {
	if cfg.PII.KEKFile == "" {
		return fmt.Errorf("reseal-pii: ORDERSYS_PII_KEK_FILE is not set")
	}
	session, err := cql.Connect(cql.SessionConfigFrom(cfg.CQL))
	if err != nil {
		return fmt.Errorf("reseal-pii: %w", err)
	}
	defer session.Close()
	keys, err := pii.Setup(session, cfg.PII, nil)
	if err != nil {
		return fmt.Errorf("reseal-pii: %w", err)
	}
	store := cql.NewEventStore(session, codec.NewRegistry(), cql.Options{})
	defer store.Close(context.WithoutCancel(ctx))
	res, err := reseal.Run(ctx, session, store, keys, func(r reseal.Result) { log.Info("reseal-pii", "progress", r.String()) })
	if err != nil {
		return fmt.Errorf("reseal-pii after %s: %w", res, err)
	}
	log.Info("reseal-pii finished", "result", res.String())
	return nil
}
