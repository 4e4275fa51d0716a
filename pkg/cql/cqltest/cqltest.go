// Package cqltest gives integration tests a fresh keyspace on the real Cassandra with the
// ordersys schema applied.
package cqltest

import (
	"context"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/testinfra"
)

// Keyspace creates a fresh keyspace (dropped when t ends), applies every migration of the
// portable profile, and returns a session on it with the keyspace name.
func Keyspace(t testing.TB) (*gocql.Session, string) {
	t.Helper()
	s, ks := testinfra.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := cql.Migrate(ctx, cql.MigrateConfig{Session: SessionConfig(ks), Profile: cql.ProfilePortable}); err != nil {
		t.Fatalf("cqltest: migrate keyspace %s: %v", ks, err)
	}
	return s, ks
}

// SessionConfig returns the session configuration of the test cluster for a keyspace.
func SessionConfig(keyspace string) cql.SessionConfig {
	return cql.SessionConfig{Hosts: testinfra.CQLHosts(), Keyspace: keyspace, Consistency: "QUORUM", Timeout: 20 * time.Second}
}
