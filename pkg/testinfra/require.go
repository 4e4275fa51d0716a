package testinfra

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// reachTimeout bounds the one reachability check per server and test binary.
const reachTimeout = 20 * time.Second

var (
	cassandraOnce sync.Once
	cassandraErr  error
	kafkaOnce     sync.Once
	kafkaErr      error
)

// Require marks t as an integration test needing both Cassandra and Kafka: it skips t under
// `go test -short` and fails it (never skips) when either server does not answer.
func Require(t testing.TB) {
	t.Helper()
	RequireCassandra(t)
	RequireKafka(t)
}

// RequireCassandra skips t under `go test -short` and fails it when Cassandra at CQLHosts does
// not answer a real query. The check runs once per test binary.
func RequireCassandra(t testing.TB) {
	t.Helper()
	skipShort(t)
	cassandraOnce.Do(func() {
		_, cassandraErr = PingCassandra(CQLHosts(), reachTimeout)
	})
	if cassandraErr != nil {
		t.Fatalf("Cassandra is not reachable at %s (%s): %v\n%s",
			strings.Join(CQLHosts(), ","), EnvCQLHosts, cassandraErr, hint)
	}
}

// RequireKafka skips t under `go test -short` and fails it when Kafka at KafkaBrokers does not
// answer a metadata request. The check runs once per test binary.
func RequireKafka(t testing.TB) {
	t.Helper()
	skipShort(t)
	kafkaOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), reachTimeout)
		defer cancel()
		_, kafkaErr = PingKafka(ctx, KafkaBrokers())
	})
	if kafkaErr != nil {
		t.Fatalf("Kafka is not reachable at %s (%s): %v\n%s",
			strings.Join(KafkaBrokers(), ","), EnvKafkaBrokers, kafkaErr, hint)
	}
}

const hint = "integration tests need the local servers: run `make infra-up` " +
	"(or `go test -short` to skip integration tests)"

func skipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test skipped in -short mode (needs the real servers of `make infra-up`)")
	}
}
