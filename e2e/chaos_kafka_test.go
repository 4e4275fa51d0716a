package e2e_test

import (
	"os"
	"testing"

	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/kafka/kafkatest"
)

// chaosServers are the chaos system's private servers: one Kafka node next to the shared
// Cassandra (`make test`, `make chaos`), or, with E2E_CHAOS_CLUSTER=3 (`make chaos CLUSTER=3`),
// three Cassandra nodes and three Kafka brokers on 127.0.0.1–3 with replication factor 3
// (min.insync.replicas 2). The shared servers serve other packages' tests at the same time and
// are never stopped.
type chaosServers struct {
	broker *kafkatest.Broker  // single
	kafka  *kafkatest.Cluster // cluster
	cass   *cqltest.Cluster   // cluster
}

func startChaosServers(t *testing.T) chaosServers {
	if os.Getenv("E2E_CHAOS_CLUSTER") == "3" {
		return chaosServers{cass: cqltest.StartCluster(t), kafka: kafkatest.StartCluster(t)}
	}
	return chaosServers{broker: kafkatest.Start(t)}
}

// clustered reports whether the servers are three-node clusters.
func (c chaosServers) clustered() bool { return c.kafka != nil }

// Brokers are the Kafka bootstrap addresses.
func (c chaosServers) Brokers() []string {
	if c.clustered() {
		return c.kafka.Addrs()
	}
	return []string{c.broker.Addr()}
}

// configure points the system at the servers.
func (c chaosServers) configure(s *system) {
	s.brokers = c.Brokers()
	if c.clustered() {
		s.cql = c.cass.Hosts()
		s.extraEnv = append(s.extraEnv, "ORDERSYS_CQL_REPLICATION={'class': 'SimpleStrategy', 'replication_factor': 3}",
			"ORDERSYS_KAFKA_REPLICATION_FACTOR=3")
	}
}

// serverFault is the servers' share of the chaos at a stage of the run (0: a third in, 1: two
// thirds in): one broker restarted at the first stage; or, clustered, one Cassandra node and one
// broker killed (SIGKILL) at the first stage, while a quorum of each stands, and started again at
// the second. It returns what it did.
func (c chaosServers) serverFault(stage int) string {
	switch {
	case !c.clustered() && stage == 0:
		c.broker.Kill()
		c.broker.Restart()
		return "kafka restarted"
	case c.clustered() && stage == 0:
		c.cass.Kill(2)
		c.kafka.Brokers[2].Kill()
		return "cassandra node 3 and broker 3 killed"
	case c.clustered() && stage == 1:
		c.kafka.Brokers[2].Restart()
		c.cass.Restart(2)
		return "cassandra node 3 and broker 3 started again"
	}
	return ""
}
