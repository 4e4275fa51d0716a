package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/ordersys/ordersys/pkg/cql"
)

// backup writes the keyspace's backup to file, through a temporary file renamed once complete.
func backup(ctx context.Context, cfg Config, schema uint, file string, log *slog.Logger) error {
	session, err := cql.Connect(cql.SessionConfigFrom(cfg.CQL))
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer session.Close()
	tmp, err := os.CreateTemp(filepath.Dir(file), filepath.Base(file)+".*.partial")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	start, last := time.Now(), time.Now()
	trailer, err := cql.Backup(ctx, session, cfg.CQL.Keyspace, schema, tmp, func(rows map[string]int64) {
		if time.Since(last) >= 5*time.Second {
			last = time.Now()
			log.Info("backup", "rows", rows)
		}
	})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	log.Info("backup finished", "file", file, "rows", trailer.Rows, "took", time.Since(start).Round(time.Millisecond),
		"recovery_point", "every event acknowledged before "+start.UTC().Format(time.RFC3339Nano))
	return nil
}

// restore writes a backup file's rows into the keyspace.
func restore(ctx context.Context, cfg Config, schema uint, file string, log *slog.Logger) error {
	session, err := cql.Connect(cql.SessionConfigFrom(cfg.CQL))
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer session.Close()
	start := time.Now()
	header, trailer, err := cql.Restore(ctx, session, func() (io.ReadCloser, error) { return os.Open(file) }, cql.RestoreOptions{
		SchemaVersion: schema,
		Progress:      func(rows int64) { log.Info("restore", "rows", rows) },
	})
	if err != nil {
		return fmt.Errorf("restore %s: %w", file, err)
	}
	log.Info("restore finished", "file", file, "from_keyspace", header.Keyspace, "backup_started", header.StartedAt,
		"backup_finished", trailer.FinishedAt, "rows", trailer.Rows, "took", time.Since(start).Round(time.Millisecond),
		"next", "start the services, re-publish (ordersysctl republish) and rebuild the read models (docs/recovery.md)")
	return nil
}
