package cql

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"testing/fstest"
	"time"

	"github.com/gocql/gocql"
	"github.com/golang-migrate/migrate/v4"
	migratecassandra "github.com/golang-migrate/migrate/v4/database/cassandra"
	"github.com/golang-migrate/migrate/v4/source/iofs"
)

//go:embed migrations
var migrationFiles embed.FS

// Profile selects the schema variant: the portable one (any CQL store, e.g. Apache Cassandra)
// or the ScyllaDB one (adds CDC on the outbox and creates the keyspace with tablets disabled).
type Profile string

// The schema profiles.
const (
	ProfilePortable Profile = "portable"
	ProfileScylla   Profile = "scylla"
)

// ddlTimeout bounds one schema statement.
const ddlTimeout = 2 * time.Minute

// DefaultReplication is the keyspace replication used when none is configured.
const DefaultReplication = "{'class': 'SimpleStrategy', 'replication_factor': 1}"

// MigrateConfig says where and how to apply the schema.
type MigrateConfig struct {
	// Session is the cluster to migrate: its keyspace must be empty (the keyspace is created here).
	Session SessionConfig
	// Profile selects the schema variant.
	Profile Profile
	// Replication is the CQL map literal of the keyspace replication.
	Replication string
	// Logger receives progress lines (may be nil).
	Logger *slog.Logger
}

var (
	keyspaceName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]{0,47}$`)
	replication  = regexp.MustCompile(`^\{[a-zA-Z0-9_:,.' ]+\}$`)
)

// migrationSource returns the migration files of a profile as one flat directory.
func migrationSource(p Profile) (fs.FS, error) {
	dirs := []string{"migrations/common"}
	switch p {
	case ProfilePortable, "":
	case ProfileScylla:
		dirs = append(dirs, "migrations/scylla")
	default:
		return nil, fmt.Errorf("unknown schema profile %q (want %q or %q)", p, ProfilePortable, ProfileScylla)
	}
	out := fstest.MapFS{}
	for _, d := range dirs {
		entries, err := migrationFiles.ReadDir(d)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			b, err := migrationFiles.ReadFile(d + "/" + e.Name())
			if err != nil {
				return nil, err
			}
			out[e.Name()] = &fstest.MapFile{Data: b}
		}
	}
	return out, nil
}

// Migrate creates the keyspace if needed and applies every pending migration of the profile,
// holding a cluster-wide lease so that concurrent migrate jobs do not interleave. It returns the
// schema version reached.
func Migrate(ctx context.Context, cfg MigrateConfig) (uint, error) {
	ks := cfg.Session.Keyspace
	if !keyspaceName.MatchString(ks) {
		return 0, fmt.Errorf("migrate: keyspace %q: must be a letter then up to 47 letters, digits or underscores", ks)
	}
	repl := cfg.Replication
	if repl == "" {
		repl = DefaultReplication
	}
	if !replication.MatchString(repl) {
		return 0, fmt.Errorf("migrate: replication %q: must be a CQL map literal like %s", repl, DefaultReplication)
	}
	src, err := migrationSource(cfg.Profile)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	// Schema changes wait for the cluster to agree on the new schema and may flush tables: on a
	// loaded node one statement can take far longer than a query, so DDL gets its own timeout.
	if cfg.Session.Timeout < ddlTimeout {
		cfg.Session.Timeout = ddlTimeout
	}
	admin := cfg.Session
	admin.Keyspace = ""
	adminSession, err := Connect(admin)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	create := fmt.Sprintf("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s", ks, repl)
	if cfg.Profile == ProfileScylla {
		// CDC and LWT are not supported on tablet keyspaces by every ScyllaDB release.
		create += " AND tablets = {'enabled': false}"
	}
	err = adminSession.Query(create).WithContext(ctx).Exec()
	adminSession.Close()
	if err != nil {
		return 0, fmt.Errorf("migrate: create keyspace %s: %w", ks, err)
	}
	log.Info("keyspace ready", "keyspace", ks, "replication", repl, "profile", cfg.Profile)

	session, err := Connect(cfg.Session)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	defer session.Close()
	if err := session.Query(createLeases).WithContext(ctx).Exec(); err != nil {
		return 0, fmt.Errorf("migrate: create leases table: %w", err)
	}
	lease := NewLease(session, "schema-migration", "", defaultMigrationLeaseTTL)
	if err := lease.Wait(ctx); err != nil {
		return 0, fmt.Errorf("migrate: take the migration lease: %w", err)
	}
	defer lease.Release(context.WithoutCancel(ctx))

	v, err := applyMigrations(session, ks, src, log)
	if err != nil {
		return v, err
	}
	if _, err := repairMissingTables(ctx, session, ks, src, v, log); err != nil {
		return v, err
	}
	return v, nil
}

const createLeases = `CREATE TABLE IF NOT EXISTS leases (name text PRIMARY KEY, owner text, acquired_at timestamp)`

func applyMigrations(session *gocql.Session, ks string, src fs.FS, log *slog.Logger) (uint, error) {
	source, err := iofs.New(src, ".")
	if err != nil {
		return 0, fmt.Errorf("migrate: read migrations: %w", err)
	}
	driver, err := migratecassandra.WithInstance(session, &migratecassandra.Config{
		KeyspaceName:          ks,
		MultiStatementEnabled: true,
	})
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", source, "cassandra", driver)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return 0, fmt.Errorf("migrate: apply: %w", err)
	}
	v, dirty, err := m.Version()
	if err != nil {
		return 0, fmt.Errorf("migrate: read version: %w", err)
	}
	if dirty {
		return v, fmt.Errorf("migrate: schema version %d is dirty: a migration failed half-way; fix it by hand, then force the version", v)
	}
	log.Info("schema up to date", "keyspace", ks, "version", v)
	return v, nil
}
