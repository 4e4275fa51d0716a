// Package testinfra connects integration tests to the real Cassandra and Kafka that
// `make infra-up` (deploy/local/infra.sh) runs on this machine.
//
// Integration tests start with Require (or RequireCassandra / RequireKafka): under `go test -short`
// the test is skipped; otherwise an unreachable server fails the test with a hint to run
// `make infra-up`. Each test then works in its own keyspace (Keyspace) and its own topics
// (TopicName, CreateTopics), so tests in different packages can run at the same time against the
// same servers.
//
// The addresses come from ORDERSYS_CQL_HOSTS and ORDERSYS_KAFKA_BROKERS (comma separated), the same
// variables the services read, with defaults 127.0.0.1:9042 and 127.0.0.1:9092.
package testinfra

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gocql/gocql"
	"github.com/segmentio/kafka-go"

	okafka "github.com/ordersys/ordersys/pkg/kafka"
)

// Environment variables naming the servers, shared with the services' configuration.
const (
	// EnvCQLHosts lists the Cassandra/ScyllaDB contact points as host:port, comma separated.
	EnvCQLHosts = "ORDERSYS_CQL_HOSTS"
	// EnvKafkaBrokers lists the Kafka/Redpanda bootstrap brokers as host:port, comma separated.
	EnvKafkaBrokers = "ORDERSYS_KAFKA_BROKERS"
)

// Defaults used when the environment variables are unset or empty: the ports deploy/local/infra.sh
// listens on.
const (
	// DefaultCQLHosts is where `make infra-up` serves CQL.
	DefaultCQLHosts = "127.0.0.1:9042"
	// DefaultKafkaBrokers is where `make infra-up` serves the Kafka protocol.
	DefaultKafkaBrokers = "127.0.0.1:9092"
)

// Timeouts of the driver sessions built by Cluster, sized for a small shared machine: above the
// server-side request timeouts in deploy/local/cassandra/cassandra.yaml.in (at most 8s).
const (
	// RequestTimeout bounds one CQL request.
	RequestTimeout = 10 * time.Second
	// ConnectTimeout bounds opening one connection, including the protocol handshake.
	ConnectTimeout = 10 * time.Second
)

// CQLHosts returns the CQL contact points from ORDERSYS_CQL_HOSTS, or DefaultCQLHosts.
func CQLHosts() []string { return listFromEnv(EnvCQLHosts, DefaultCQLHosts) }

// KafkaBrokers returns the Kafka bootstrap brokers from ORDERSYS_KAFKA_BROKERS, or
// DefaultKafkaBrokers.
func KafkaBrokers() []string { return listFromEnv(EnvKafkaBrokers, DefaultKafkaBrokers) }

func listFromEnv(name, def string) []string {
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		v = def
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Cluster returns a driver configuration for hosts and keyspace (empty for none) with settings
// that work on both Cassandra and ScyllaDB: protocol v4, QUORUM reads and writes, SERIAL for
// lightweight transactions, token-aware routing and RequestTimeout / ConnectTimeout.
// Callers may adjust the result before CreateSession.
func Cluster(hosts []string, keyspace string) *gocql.ClusterConfig {
	c := gocql.NewCluster(hosts...)
	c.Keyspace = keyspace
	c.ProtoVersion = 4
	c.Consistency = gocql.Quorum
	c.SerialConsistency = gocql.Serial
	c.Timeout = RequestTimeout
	c.ConnectTimeout = ConnectTimeout
	c.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(gocql.RoundRobinHostPolicy())
	return c
}

// PingCassandra opens a session to hosts and runs `SELECT release_version FROM system.local`,
// returning the server's release version. timeout bounds connecting and the query.
func PingCassandra(hosts []string, timeout time.Duration) (string, error) {
	c := Cluster(hosts, "")
	c.Timeout = timeout
	c.ConnectTimeout = timeout
	c.NumConns = 1
	c.Logger = quietLogger{}
	s, err := c.CreateSession()
	if err != nil {
		return "", fmt.Errorf("connect to cassandra at %s: %w", strings.Join(hosts, ","), err)
	}
	defer s.Close()
	var release string
	if err := s.Query(`SELECT release_version FROM system.local`).Consistency(gocql.One).Scan(&release); err != nil {
		return "", fmt.Errorf("query system.local at %s: %w", strings.Join(hosts, ","), err)
	}
	return release, nil
}

// PingKafka pings the brokers (okafka.Brokers) and asks for the coordinator of a consumer group,
// which makes the broker create its offsets topic: it succeeds only once the broker and its
// controller serve requests. It returns the number of brokers in the cluster.
func PingKafka(ctx context.Context, brokers []string) (int, error) {
	n, err := okafka.Brokers(ctx, okafka.Cluster{Brokers: brokers})
	if err != nil {
		return 0, err
	}
	client := &kafka.Client{Addr: kafka.TCP(brokers...)}
	fc, err := client.FindCoordinator(ctx, &kafka.FindCoordinatorRequest{
		Key:     "ordersys-infraprobe",
		KeyType: kafka.CoordinatorKeyTypeConsumer,
	})
	if err == nil && fc.Error != nil {
		err = fc.Error
	}
	if err != nil {
		return 0, fmt.Errorf("group coordinator from kafka at %s: %w", strings.Join(brokers, ","), err)
	}
	return n, nil
}

// quietLogger drops the driver's log lines (used by the probe, which reports errors itself).
type quietLogger struct{}

func (quietLogger) Print(...any)          {}
func (quietLogger) Printf(string, ...any) {}
func (quietLogger) Println(...any)        {}

// randomSuffix returns n random bytes as lower-case hex.
func randomSuffix(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("testinfra: crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}

// sanitize keeps ASCII letters and digits of s, lower-cased, replaces runs of anything else with
// sep and cuts the result to max bytes.
func sanitize(s string, sep byte, max int) string {
	var b strings.Builder
	pending := false
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case r >= 'A' && r <= 'Z':
			r += 'a' - 'A'
		default:
			pending = b.Len() > 0
			continue
		}
		if pending {
			b.WriteByte(sep)
			pending = false
		}
		b.WriteRune(r)
	}
	out := b.String()
	if len(out) > max {
		out = out[:max]
	}
	return strings.TrimRight(out, string(sep))
}

var errNoLeader = errors.New("partition has no leader yet")
