package testinfra

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"
)

// ddlTimeout bounds CREATE/DROP KEYSPACE, which wait for schema agreement and flushes.
const ddlTimeout = 60 * time.Second

var (
	adminMu      sync.Mutex
	adminSession *gocql.Session
)

// admin returns the session (no keyspace) shared by the tests of one binary for keyspace DDL.
func admin(t testing.TB) *gocql.Session {
	t.Helper()
	adminMu.Lock()
	defer adminMu.Unlock()
	if adminSession != nil && !adminSession.Closed() {
		return adminSession
	}
	c := Cluster(CQLHosts(), "")
	c.Timeout = ddlTimeout
	s, err := c.CreateSession()
	if err != nil {
		t.Fatalf("testinfra: connect to cassandra at %v: %v\n%s", CQLHosts(), err, hint)
	}
	adminSession = s
	return s
}

// KeyspaceName returns a fresh keyspace name derived from t's name: lower case, at most 48
// characters, unique per call.
func KeyspaceName(t testing.TB) string {
	return "t_" + sanitize(t.Name(), '_', 30) + "_" + randomSuffix(6)
}

// Keyspace requires Cassandra (see RequireCassandra), creates a fresh keyspace for t
// (SimpleStrategy, replication factor 1) and returns a session bound to it together with its
// name. The session is closed and the keyspace dropped when t ends. Code under test that opens its
// own sessions can use Cluster(CQLHosts(), keyspace).
func Keyspace(t testing.TB) (*gocql.Session, string) {
	t.Helper()
	RequireCassandra(t)
	ks := KeyspaceName(t)
	a := admin(t)
	stmt := fmt.Sprintf(`CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`, ks)
	if err := a.Query(stmt).Exec(); err != nil {
		t.Fatalf("testinfra: create keyspace %s: %v", ks, err)
	}
	t.Cleanup(func() {
		if err := a.Query(fmt.Sprintf(`DROP KEYSPACE IF EXISTS %s`, ks)).Exec(); err != nil {
			t.Logf("testinfra: drop keyspace %s: %v", ks, err)
		}
	})
	s, err := Cluster(CQLHosts(), ks).CreateSession()
	if err != nil {
		t.Fatalf("testinfra: open session on keyspace %s: %v", ks, err)
	}
	t.Cleanup(s.Close) // runs before the drop above
	return s, ks
}
