package cql

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gocql/gocql"
)

// A logical backup of the source of truth.
//
// Backup writes the tables that cannot be derived from others — the event store, the rejected
// commands (so that a repeated command id keeps its first answer) and the customers' wrapped
// data keys (without them the restored personal data cannot be read) — as JSON lines in CQL's
// own JSON form (SELECT JSON / INSERT JSON, the same in Apache Cassandra and ScyllaDB), one
// partition at a time, walking each table's partitions over the token ring. Everything else is
// derived and is rebuilt after a restore: snapshots (taken again as aggregates load), the read
// models (a rebuild), the topics (a re-publication), the relay's outbox, intents, checkpoints
// and progress (empty is their correct state for a store whose events are all re-published).
//
// The file: a header line, one line per row, a trailer line with the row counts. Restore
// refuses a file without its trailer (a backup cut short) and a target whose event store is
// not empty.
//
// Recovery point: each partition is read once, when the walk reaches it, so an aggregate is
// restored as it was at that moment (a prefix of its events). Every event acknowledged before
// the backup started is in it; one acknowledged after it finished is not; one acknowledged
// meanwhile may be (docs/recovery.md).

// BackupFormat names the file format in its header.
const BackupFormat = "ordersys-backup/1"

// backupTables are the tables a backup holds and their (single-column) partition keys, in the
// order they are written.
var backupTables = []struct{ name, key string }{
	{"event_store", "aggregate_id"},
	{"command_rejections", "aggregate_id"},
	{"customer_keys", "customer_id"},
}

// backupLine is one line of a backup file: exactly one of its fields is set.
type backupLine struct {
	Header  *BackupHeader   `json:"header,omitempty"`
	Table   string          `json:"table,omitempty"`
	Row     json.RawMessage `json:"row,omitempty"`
	Trailer *BackupTrailer  `json:"trailer,omitempty"`
}

// BackupHeader opens a backup file.
type BackupHeader struct {
	Format        string    `json:"format"`
	Keyspace      string    `json:"keyspace"`
	SchemaVersion uint      `json:"schema_version"`
	StartedAt     time.Time `json:"started_at"`
}

// BackupTrailer closes a complete backup file.
type BackupTrailer struct {
	FinishedAt time.Time        `json:"finished_at"`
	Rows       map[string]int64 `json:"rows"`
}

// BackupPartitionPage is how many partitions a backup lists per query.
const BackupPartitionPage = 500

// Backup writes the keyspace's source-of-truth tables to w (see above); schemaVersion is the
// schema the keyspace is at (Migrate's answer), recorded so that a restore can refuse an older
// schema. progress, when set, is called after every page of partitions with the rows so far.
func Backup(ctx context.Context, s *gocql.Session, keyspace string, schemaVersion uint, w io.Writer, progress func(rows map[string]int64)) (BackupTrailer, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	enc := json.NewEncoder(bw)
	header := BackupHeader{Format: BackupFormat, Keyspace: keyspace, SchemaVersion: schemaVersion, StartedAt: time.Now().UTC()}
	if err := enc.Encode(backupLine{Header: &header}); err != nil {
		return BackupTrailer{}, err
	}
	rows := map[string]int64{}
	for _, t := range backupTables {
		rows[t.name] = 0
		for after := MinToken; ; {
			keys, last, err := partitions(ctx, s, t.name, t.key, after, BackupPartitionPage)
			if err != nil {
				return BackupTrailer{}, err
			}
			if len(keys) == 0 {
				break
			}
			for _, k := range keys {
				iter := s.Query(`SELECT JSON * FROM `+t.name+` WHERE `+t.key+` = ?`, k).WithContext(ctx).PageSize(1000).Iter()
				var row string
				for iter.Scan(&row) {
					if err := enc.Encode(backupLine{Table: t.name, Row: json.RawMessage(row)}); err != nil {
						_ = iter.Close()
						return BackupTrailer{}, err
					}
					rows[t.name]++
				}
				if err := iter.Close(); err != nil {
					return BackupTrailer{}, fmt.Errorf("back up %s partition %s: %w", t.name, k, UnavailableIn(ctx, err))
				}
			}
			if progress != nil {
				progress(rows)
			}
			after = last
		}
	}
	trailer := BackupTrailer{FinishedAt: time.Now().UTC(), Rows: rows}
	if err := enc.Encode(backupLine{Trailer: &trailer}); err != nil {
		return BackupTrailer{}, err
	}
	return trailer, bw.Flush()
}

// partitions lists up to limit partition keys of table whose token is greater than after
// (MinToken: from the start), in token order, with the token of the last one: one bounded
// query per page (SELECT DISTINCT on the partition key), never a full scan in one query. An
// empty page means the end of the ring.
func partitions(ctx context.Context, s *gocql.Session, table, key string, after int64, limit int) (keys []string, last int64, err error) {
	if after == WalkDone {
		return nil, after, nil
	}
	op := ">"
	if after == MinToken {
		op = ">="
	}
	iter := s.Query(`SELECT DISTINCT `+key+`, token(`+key+`) FROM `+table+` WHERE token(`+key+`) `+op+` ? LIMIT ?`,
		after, limit).WithContext(ctx).PageSize(limit).Iter()
	var k string
	var tok int64
	last = after
	for iter.Scan(&k, &tok) {
		keys = append(keys, k)
		last = tok
	}
	if err := iter.Close(); err != nil {
		return nil, after, fmt.Errorf("list %s partitions after token %d: %w", table, after, UnavailableIn(ctx, err))
	}
	return keys, last, nil
}

// ErrBackupIncomplete is returned by Restore for a file without its trailer or whose rows do
// not add up to it.
var ErrBackupIncomplete = errors.New("the backup is incomplete")

// ErrStoreNotEmpty is returned by Restore when the target's event store holds events.
var ErrStoreNotEmpty = errors.New("the event store is not empty: restore only into a freshly migrated keyspace")
