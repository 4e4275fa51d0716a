package cqltest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/testinfra"
)

// Shared is one migrated keyspace that every test of a test binary uses (each test with fresh
// ids, so they do not see each other's rows). Session makes it on first use; TestMain calls
// Close after m.Run to drop it. The zero value is not usable: see NewShared.
type Shared struct {
	prefix string

	once     sync.Once
	keyspace string
	session  *gocql.Session
	err      error
}

// NewShared returns a Shared whose keyspace is named "t_<name>_" and 12 random hexadecimal
// digits, e.g. t_command_3f9a0c1b2d4e.
func NewShared(name string) *Shared { return &Shared{prefix: "t_" + name + "_"} }

// Session requires Cassandra (see testinfra.RequireCassandra: t skips under -short), makes the
// keyspace on first use (applying every migration of the portable profile) and returns a
// session on it with its name. It fails t when the keyspace could not be made, on every call.
func (s *Shared) Session(t testing.TB) (*gocql.Session, string) {
	t.Helper()
	testinfra.RequireCassandra(t)
	s.once.Do(func() { s.session, s.err = s.create() })
	if s.err != nil {
		t.Fatalf("shared keyspace: %v", s.err)
	}
	return s.session, s.keyspace
}

func (s *Shared) create() (*gocql.Session, error) {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	s.keyspace = s.prefix + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := cql.Migrate(ctx, cql.MigrateConfig{Session: SessionConfig(s.keyspace), Profile: cql.ProfilePortable}); err != nil {
		_ = dropKeyspace(s.keyspace)
		return nil, fmt.Errorf("migrate %s: %w", s.keyspace, err)
	}
	session, err := cql.Connect(SessionConfig(s.keyspace))
	if err != nil {
		_ = dropKeyspace(s.keyspace)
		return nil, err
	}
	return session, nil
}

// Close closes the session and drops the keyspace, if Session made them; it is a no-op
// otherwise.
func (s *Shared) Close() error {
	if s.session == nil {
		return nil
	}
	s.session.Close()
	if err := dropKeyspace(s.keyspace); err != nil {
		return fmt.Errorf("drop keyspace %s: %w", s.keyspace, err)
	}
	return nil
}

func dropKeyspace(ks string) error {
	c := testinfra.Cluster(testinfra.CQLHosts(), "")
	c.Timeout = time.Minute
	s, err := c.CreateSession()
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Query("DROP KEYSPACE IF EXISTS " + ks).Exec()
}
