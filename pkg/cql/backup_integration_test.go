package cql_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sort"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
)

// TestBackupRestoresTheSourceOfTruth backs up a keyspace (events, a rejected command, a data
// key and an erased customer's tombstone row) and restores it into a fresh one: every row of
// the three tables is back, byte for byte in CQL's JSON form, and the restored store appends
// after the restored version. A backup cut short is refused before anything is written, and a
// restore into a store that holds events is refused.
func TestBackupRestoresTheSourceOfTruth(t *testing.T) {
	src, srcKS := cqltest.Keyspace(t)
	dst, _ := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := cql.NewEventStore(src, codec.NewRegistry(), cql.Options{})
	var aggs []string
	for range 7 {
		id := uuid.NewString()
		if _, err := st.Append(ctx, faultRequest(id, 0, newIDs(2))); err != nil {
			t.Fatal(err)
		}
		aggs = append(aggs, id)
	}
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, q := range []struct {
		stmt string
		args []any
	}{
		{`INSERT INTO command_rejections (aggregate_id, command_id, fingerprint, code, message, created_at) VALUES (?,?,?,?,?,?)`,
			[]any{aggs[0], "cmd-rejected", "fp", "FAILED_PRECONDITION", "order is shipped", now}},
		{`INSERT INTO customer_keys (customer_id, keyset, kek_key_id, created_at) VALUES (?,?,?,?)`,
			[]any{gocql.TimeUUID(), []byte{1, 2, 3, 0xff}, int64(42), now}},
		{`INSERT INTO customer_keys (customer_id, kek_key_id, created_at, erased_at) VALUES (?,?,?,?)`,
			[]any{gocql.TimeUUID(), int64(42), now, now}},
	} {
		if err := src.Query(q.stmt, q.args...).Exec(); err != nil {
			t.Fatal(err)
		}
	}

	var file bytes.Buffer
	trailer, err := cql.Backup(ctx, src, srcKS, 5, &file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if trailer.Rows["command_rejections"] != 1 || trailer.Rows["customer_keys"] != 2 || trailer.Rows["event_store"] != 7*2 {
		t.Fatalf("backed up %v", trailer.Rows)
	}
	open := func(b []byte) func() (io.ReadCloser, error) {
		return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}

	// Cut short: refused, nothing written.
	cut := file.Bytes()[:bytes.LastIndexByte(file.Bytes()[:file.Len()-1], '\n')+1]
	if _, _, err := cql.Restore(ctx, dst, open(cut), cql.RestoreOptions{SchemaVersion: 5}); !errors.Is(err, cql.ErrBackupIncomplete) {
		t.Fatalf("restore of a backup without its trailer: %v, want ErrBackupIncomplete", err)
	}
	if n := len(tableRows(t, dst, "event_store")); n != 0 {
		t.Fatalf("a refused restore wrote %d rows", n)
	}
	if _, _, err := cql.Restore(ctx, dst, open(file.Bytes()), cql.RestoreOptions{SchemaVersion: 4}); err == nil {
		t.Fatal("a backup of a newer schema was restored")
	}

	if _, _, err := cql.Restore(ctx, dst, open(file.Bytes()), cql.RestoreOptions{SchemaVersion: 5, Workers: 4}); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"event_store", "command_rejections", "customer_keys"} {
		want, got := tableRows(t, src, table), tableRows(t, dst, table)
		if len(want) == 0 || len(got) != len(want) {
			t.Fatalf("%s: %d rows restored, %d backed up", table, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s row %d restored as\n%s\nbacked up as\n%s", table, i, got[i], want[i])
			}
		}
	}
	if _, _, err := cql.Restore(ctx, dst, open(file.Bytes()), cql.RestoreOptions{SchemaVersion: 5}); !errors.Is(err, cql.ErrStoreNotEmpty) {
		t.Fatalf("second restore: %v, want ErrStoreNotEmpty", err)
	}
	restored := cql.NewEventStore(dst, codec.NewRegistry(), cql.Options{})
	defer restored.Close(ctx)
	res, err := restored.Append(ctx, faultRequest(aggs[2], 2, newIDs(2)))
	if err != nil || res.Version != 4 {
		t.Fatalf("append after the restored version 2: %+v %v", res, err)
	}
}

// tableRows returns every row of table in CQL's JSON form, sorted.
func tableRows(t *testing.T, s *gocql.Session, table string) []string {
	t.Helper()
	iter := s.Query(`SELECT JSON * FROM ` + table).Iter()
	var rows []string
	var row string
	for iter.Scan(&row) {
		rows = append(rows, row)
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(rows)
	return rows
}
