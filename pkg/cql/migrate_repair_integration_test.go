package cql_test

import (
	"context"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
)

// TestMigrateRecreatesMissingTables drops tables of a migrated keyspace (as a hand-made change,
// or a keyspace made when the migrations were numbered otherwise, leaves them: found on a
// development keyspace at version 6 without customer_keys, whose customer commands then failed
// with Unavailable): migrate, which before said the schema was up to date, creates them again.
func TestMigrateRecreatesMissingTables(t *testing.T) {
	s, ks := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, table := range []string{"customer_keys", "published_sequences"} {
		if err := s.Query(`DROP TABLE ` + table).WithContext(ctx).Exec(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cql.Migrate(ctx, cql.MigrateConfig{Session: cqltest.SessionConfig(ks), Profile: cql.ProfilePortable}); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	for _, table := range []string{"customer_keys", "published_sequences"} {
		var n int
		if err := s.Query(`SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?`, ks, table).
			WithContext(ctx).Scan(new(string)); err != nil {
			t.Fatalf("%s after migrate: %v", table, err)
		}
		if err := s.Query(`SELECT count(*) FROM ` + table).WithContext(ctx).Scan(&n); err != nil {
			t.Fatalf("read %s after migrate: %v", table, err)
		}
	}
}
