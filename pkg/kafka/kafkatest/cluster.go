package kafkatest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/testinfra"
)

// ClusterBrokers is the size of a Cluster.
const ClusterBrokers = 3

// Cluster is three private Kafka nodes (KRaft, each a broker and a controller of one static
// quorum) on 127.0.0.1, 127.0.0.2 and 127.0.0.3, the same ports on each: replication factor 3
// and min.insync.replicas 2 by default, so that one broker may die while writes go on.
type Cluster struct {
	Brokers []*Broker
}

// StartCluster formats three fresh data directories with one cluster id, starts the three nodes
// at once (a quorum needs two of them) and waits until each serves metadata. They are killed
// when t ends.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	others := []string{"127.0.0.2", "127.0.0.3"}
	port, ctrlPort := testinfra.FreePortOnAll(t, others...), testinfra.FreePortOnAll(t, others...)
	var voters []string
	for i := range ClusterBrokers {
		voters = append(voters, fmt.Sprintf("%d@127.0.0.%d:%d", i+1, i+1, ctrlPort))
	}
	c := &Cluster{}
	var id string
	for i := range ClusterBrokers {
		b := newBroker(t, fmt.Sprintf("127.0.0.%d", i+1))
		b.Port, b.ctrlPort = port, ctrlPort
		props := fmt.Sprintf(`process.roles=broker,controller
node.id=%[1]d
controller.quorum.voters=%[2]s
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://%[3]s:%[4]d,CONTROLLER://%[3]s:%[5]d
advertised.listeners=PLAINTEXT://%[3]s:%[4]d
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=%[6]s/data
%[7]s`, i+1, strings.Join(voters, ","), b.host, port, ctrlPort, b.dir, serverProps(ClusterBrokers))
		if err := os.WriteFile(filepath.Join(b.dir, "server.properties"), []byte(props), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(b.dir, "logs"), 0o755); err != nil {
			t.Fatal(err)
		}
		if id == "" {
			out, err := exec.Command(b.javaBinary, append(b.jvm(), "kafka.tools.StorageTool", "random-uuid")...).Output()
			if err != nil {
				t.Fatalf("kafkatest: StorageTool random-uuid: %v", err)
			}
			id = strings.TrimSpace(string(out))
		}
		if out, err := exec.Command(b.javaBinary, append(b.jvm(), "kafka.tools.StorageTool", "format", "-t", id,
			"-c", filepath.Join(b.dir, "server.properties"), "--ignore-formatted")...).CombinedOutput(); err != nil {
			t.Fatalf("kafkatest: format storage of broker %d: %v\n%s", i+1, err, out)
		}
		t.Cleanup(func() { b.Kill() })
		c.Brokers = append(c.Brokers, b)
	}
	for _, b := range c.Brokers {
		b.launch()
	}
	for _, b := range c.Brokers {
		b.waitReady(3 * time.Minute)
	}
	return c
}

// Addrs are the brokers' bootstrap addresses.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, b := range c.Brokers {
		out = append(out, b.Addr())
	}
	return out
}
