package cql

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"sync"

	"github.com/gocql/gocql"
)

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// SchemaVersion is the schema of the target keyspace (Migrate's answer); a backup of a newer
	// schema is refused.
	SchemaVersion uint
	// Workers is how many rows are written at once (default 32); the rows of one partition are
	// written in the file's order by one worker.
	Workers int
	// Progress, when set, is called every 10,000 rows with the rows written so far.
	Progress func(rows int64)
}

// Restore writes the rows of a backup file (Backup) into the session's keyspace, which must be
// migrated and hold no event (ErrStoreNotEmpty). open is called twice: the first pass checks
// the whole file (format, schema, known tables, the trailer and its counts:
// ErrBackupIncomplete) before anything is written, the second writes the rows with INSERT JSON.
func Restore(ctx context.Context, s *gocql.Session, open func() (io.ReadCloser, error), opts RestoreOptions) (BackupHeader, BackupTrailer, error) {
	if opts.Workers <= 0 {
		opts.Workers = 32
	}
	header, trailer, err := readBackup(open, opts.SchemaVersion, nil)
	if err != nil {
		return header, trailer, err
	}
	var any string
	if err := s.Query(`SELECT aggregate_id FROM event_store LIMIT 1`).WithContext(ctx).Scan(&any); err == nil {
		return header, trailer, ErrStoreNotEmpty
	} else if !errors.Is(err, gocql.ErrNotFound) {
		return header, trailer, fmt.Errorf("check that the event store is empty: %w", UnavailableIn(ctx, err))
	}

	type job struct{ table, row string }
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	queues := make([]chan job, opts.Workers)
	var wg sync.WaitGroup
	var written int64
	var mu sync.Mutex
	for i := range queues {
		queues[i] = make(chan job, 64)
		wg.Add(1)
		go func(q chan job) {
			defer wg.Done()
			for j := range q {
				if ctx.Err() != nil {
					continue // drain
				}
				if err := s.Query(`INSERT INTO `+j.table+` JSON ?`, j.row).WithContext(ctx).Exec(); err != nil {
					cancel(fmt.Errorf("restore a row of %s: %w", j.table, UnavailableIn(ctx, err)))
					continue
				}
				mu.Lock()
				written++
				if opts.Progress != nil && written%10_000 == 0 {
					opts.Progress(written)
				}
				mu.Unlock()
			}
		}(queues[i])
	}
	_, _, rerr := readBackup(open, opts.SchemaVersion, func(table, key string, row json.RawMessage) error {
		h := fnv.New32a()
		_, _ = h.Write([]byte(table + "/" + key))
		select {
		case queues[h.Sum32()%uint32(len(queues))] <- job{table, string(row)}:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return header, trailer, err
	}
	if rerr != nil {
		return header, trailer, rerr
	}
	return header, trailer, nil
}

// readBackup reads a backup file through, checking it, and calls row (when set) with every row,
// its table and its partition key.
func readBackup(open func() (io.ReadCloser, error), schema uint, row func(table, key string, row json.RawMessage) error) (BackupHeader, BackupTrailer, error) {
	var header BackupHeader
	var trailer *BackupTrailer
	f, err := open()
	if err != nil {
		return header, BackupTrailer{}, err
	}
	defer f.Close()
	keys := map[string]string{}
	for _, t := range backupTables {
		keys[t.name] = t.key
	}
	counts := map[string]int64{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 256<<20) // an event row holds up to one event's envelope
	for n := 1; sc.Scan(); n++ {
		var l backupLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return header, BackupTrailer{}, fmt.Errorf("backup line %d: %w", n, err)
		}
		switch {
		case n == 1:
			if l.Header == nil || l.Header.Format != BackupFormat {
				return header, BackupTrailer{}, fmt.Errorf("backup line 1: not an %s header", BackupFormat)
			}
			header = *l.Header
			if schema != 0 && header.SchemaVersion > schema {
				return header, BackupTrailer{}, fmt.Errorf("the backup's schema version %d is newer than the keyspace's %d: restore with the release that made it", header.SchemaVersion, schema)
			}
		case trailer != nil:
			return header, BackupTrailer{}, fmt.Errorf("backup line %d: a line after the trailer", n)
		case l.Trailer != nil:
			trailer = l.Trailer
		default:
			key, ok := keys[l.Table]
			if !ok {
				return header, BackupTrailer{}, fmt.Errorf("backup line %d: table %q is not one a backup holds", n, l.Table)
			}
			var cols map[string]json.RawMessage
			if err := json.Unmarshal(l.Row, &cols); err != nil || cols[key] == nil {
				return header, BackupTrailer{}, fmt.Errorf("backup line %d: a %s row without its %s", n, l.Table, key)
			}
			counts[l.Table]++
			if row != nil {
				if err := row(l.Table, string(cols[key]), l.Row); err != nil {
					return header, BackupTrailer{}, err
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return header, BackupTrailer{}, fmt.Errorf("read the backup: %w", err)
	}
	if trailer == nil {
		return header, BackupTrailer{}, fmt.Errorf("%w: it has no trailer (cut short?)", ErrBackupIncomplete)
	}
	for table, want := range trailer.Rows {
		if counts[table] != want {
			return header, *trailer, fmt.Errorf("%w: %d rows of %s, the trailer says %d", ErrBackupIncomplete, counts[table], table, want)
		}
	}
	return header, *trailer, nil
}
