package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql/cqltest"
)

// scyllaFutureLimit is how far ahead of the clock ScyllaDB accepts a write timestamp by default
// (restrict_future_timestamp).
const scyllaFutureLimit = 72 * time.Hour

// writesAheadOfTheClock reads the write time of every cell of every table of keyspace and
// returns an error naming the columns written more than scyllaFutureLimit ahead of now: such a
// write works on Cassandra and is refused by a default ScyllaDB (the relay's progress writes once
// were, which would have stalled it there). Non-frozen collections (no single write time) are
// skipped.
func writesAheadOfTheClock(ctx context.Context, s *gocql.Session, keyspace string) error {
	limit := time.Now().Add(scyllaFutureLimit).UnixMicro()
	iter := s.Query(`SELECT table_name, column_name, kind, type FROM system_schema.columns WHERE keyspace_name = ?`, keyspace).WithContext(ctx).Iter()
	var table, column, kind, typ string
	cols := map[string][]string{} // table → its columns with one write time per cell
	var tables []string
	for iter.Scan(&table, &column, &kind, &typ) {
		multiCell := !strings.HasPrefix(typ, "frozen<") && (strings.HasPrefix(typ, "list<") || strings.HasPrefix(typ, "set<") || strings.HasPrefix(typ, "map<"))
		if (kind == "regular" || kind == "static") && !multiCell {
			if cols[table] == nil {
				tables = append(tables, table)
			}
			cols[table] = append(cols[table], column)
		}
	}
	if err := iter.Close(); err != nil {
		return fmt.Errorf("columns of %s: %w", keyspace, err)
	}
	if len(cols) == 0 {
		return fmt.Errorf("no columns found in keyspace %s", keyspace)
	}
	// One scan per table reads the write times of all its columns (a scan per column timed out
	// after five minutes of chaos had written 86,000 events).
	var ahead []string
	for _, t := range tables {
		sel := make([]string, len(cols[t]))
		for i, c := range cols[t] {
			sel[i] = "writetime(" + c + ")"
		}
		it := s.Query(fmt.Sprintf(`SELECT %s FROM %s.%s`, strings.Join(sel, ", "), keyspace, t)).WithContext(ctx).PageSize(5000).Iter()
		wts := make([]*int64, len(sel))
		dest := make([]any, len(sel))
		for i := range wts {
			dest[i] = &wts[i]
		}
		n := make([]int, len(sel))
		for it.Scan(dest...) {
			for i, wt := range wts {
				if wt != nil && *wt > limit {
					n[i]++
				}
			}
		}
		if err := it.Close(); err != nil {
			return fmt.Errorf("write times of %s: %w", t, err)
		}
		for i, c := range cols[t] {
			if n[i] > 0 {
				ahead = append(ahead, fmt.Sprintf("%s.%s (%d cells)", t, c, n[i]))
			}
		}
	}
	if len(ahead) > 0 {
		return fmt.Errorf("written more than %v ahead of the clock, which ScyllaDB refuses: %s", scyllaFutureLimit, strings.Join(ahead, ", "))
	}
	return nil
}

// TestWritesAheadOfTheClockAreFound checks the check itself on a migrated keyspace: nothing is
// found before, and a progress row written the way the relay once wrote it (2^53 µs) is found.
func TestWritesAheadOfTheClockAreFound(t *testing.T) {
	s, ks := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := writesAheadOfTheClock(ctx, s, ks); err != nil {
		t.Fatalf("a migrated keyspace: %v", err)
	}
	if err := s.Query(`INSERT INTO publish_progress (aggregate_id, sequence, updated_at) VALUES (?, ?, ?) USING TIMESTAMP ?`,
		gocql.TimeUUID(), 3, time.Now(), int64(1<<53+3)).Exec(); err != nil {
		t.Fatal(err)
	}
	err := writesAheadOfTheClock(ctx, s, ks)
	if err == nil || !strings.Contains(err.Error(), "publish_progress.sequence (1 cells)") {
		t.Fatalf("after a write at 2^53 µs: %v, want publish_progress.sequence named", err)
	}
}
