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
	type col struct{ table, column string }
	var cols []col
	for iter.Scan(&table, &column, &kind, &typ) {
		multiCell := !strings.HasPrefix(typ, "frozen<") && (strings.HasPrefix(typ, "list<") || strings.HasPrefix(typ, "set<") || strings.HasPrefix(typ, "map<"))
		if (kind == "regular" || kind == "static") && !multiCell {
			cols = append(cols, col{table, column})
		}
	}
	if err := iter.Close(); err != nil {
		return fmt.Errorf("columns of %s: %w", keyspace, err)
	}
	if len(cols) == 0 {
		return fmt.Errorf("no columns found in keyspace %s", keyspace)
	}
	var ahead []string
	for _, c := range cols {
		it := s.Query(fmt.Sprintf(`SELECT writetime(%s) FROM %s.%s`, c.column, keyspace, c.table)).WithContext(ctx).PageSize(5000).Iter()
		var wt *int64
		n := 0
		for it.Scan(&wt) {
			if wt != nil && *wt > limit {
				n++
			}
		}
		if err := it.Close(); err != nil {
			return fmt.Errorf("write times of %s.%s: %w", c.table, c.column, err)
		}
		if n > 0 {
			ahead = append(ahead, fmt.Sprintf("%s.%s (%d cells)", c.table, c.column, n))
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
