package cqltest

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/testinfra"
)

// Cluster is a private Cassandra cluster of three nodes on 127.0.0.1, 127.0.0.2 and 127.0.0.3
// (the same ports on each), with a keyspace replicated to all three: what production looks
// like, and where an LWT's unknown outcome really comes from (a coordinator that stops
// answering after the proposal went out, a replica that is slow or gone while a quorum stands).
type Cluster struct {
	// Keyspace is the migrated keyspace (replication factor 3).
	Keyspace string
	// Port is every node's native transport port.
	Port  int
	nodes []*node
	yamls []string // each node's configuration, for restarts
	t     testing.TB
}

// ClusterNodes is the size of a Cluster.
const ClusterNodes = 3

// clusterStartTimeout bounds the start of the three nodes on a busy 2-core machine.
const clusterStartTimeout = 5 * time.Minute

// StartCluster starts a Cluster from the jars `make infra-up` resolved, with the data in
// temporary folders, waits until every node sees the others up, and migrates a keyspace with
// replication factor 3. The nodes are killed when t ends.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("three-node Cassandra: integration test skipped under -short")
	}
	cqlPort, storagePort := testinfra.FreePortOnAll(t, "127.0.0.2", "127.0.0.3"), testinfra.FreePortOnAll(t, "127.0.0.2", "127.0.0.3")
	c := &Cluster{Port: cqlPort, t: t}
	seeds := fmt.Sprintf("%s:%d", c.addr(0), storagePort)
	for i := range ClusterNodes {
		dir := t.TempDir()
		yaml := nodeYAML(t, dir, c.addr(i), cqlPort, storagePort)
		yaml = strings.Replace(yaml, fmt.Sprintf(`seeds: "%s:%d"`, c.addr(i), storagePort), fmt.Sprintf(`seeds: "%s"`, seeds), 1)
		// One token each, spread evenly over the ring (the template's initial_token is 0).
		token := int64(math.MinInt64) + int64(i)*int64(math.MaxUint64/ClusterNodes)
		yaml = strings.Replace(yaml, "initial_token: 0", fmt.Sprintf("initial_token: %d", token), 1)
		yaml = strings.Replace(yaml, "cluster_name: 'ordersys-local'", "cluster_name: 'ordersys-cluster'", 1)
		c.yamls = append(c.yamls, yaml)
		c.nodes = append(c.nodes, startNode(t, dir, yaml, clusterJVMArgs...))
		if i == 0 {
			c.waitNode(t, 0, time.Now().Add(clusterStartTimeout)) // the seed first
		}
	}
	deadline := time.Now().Add(clusterStartTimeout)
	for i := range c.nodes {
		c.waitNode(t, i, deadline)
	}
	for {
		if err := c.allUp(); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("cqltest: the cluster did not form within %s: %v", clusterStartTimeout, err)
		}
		time.Sleep(time.Second)
	}
	c.Keyspace = fmt.Sprintf("cluster_%d", time.Now().UnixNano()%1e9)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := cql.Migrate(ctx, cql.MigrateConfig{Session: c.SessionConfig(), Profile: cql.ProfilePortable,
		Replication: "{'class': 'SimpleStrategy', 'replication_factor': 3}"}); err != nil {
		t.Fatalf("cqltest: migrate the cluster's keyspace: %v", err)
	}
	return c
}

func (c *Cluster) addr(i int) string { return fmt.Sprintf("127.0.0.%d", i+1) }

// Hosts are the nodes' host:port.
func (c *Cluster) Hosts() []string {
	var out []string
	for i := range c.nodes {
		out = append(out, fmt.Sprintf("%s:%d", c.addr(i), c.Port))
	}
	return out
}

// Host is node i's host:port.
func (c *Cluster) Host(i int) string { return c.Hosts()[i] }

// SessionConfig is a session on every node at QUORUM (SERIAL for conditions).
func (c *Cluster) SessionConfig() cql.SessionConfig {
	return cql.SessionConfig{Hosts: c.Hosts(), Keyspace: c.Keyspace, Consistency: "QUORUM", Timeout: 10 * time.Second}
}

// clusterJVMArgs let the nodes of an empty cluster start at once and gossip quickly.
var clusterJVMArgs = []string{"-Dcassandra.consistent.rangemovement=false", "-Dcassandra.ring_delay_ms=1000"}

// Kill stops node i with SIGKILL (a crash) and waits until it has exited.
func (c *Cluster) Kill(i int) {
	n := c.nodes[i]
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGCONT)
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	<-n.done
}

// Restart starts a killed node i again on its data and waits until it answers CQL (the others
// mark it up by gossip within seconds; a quorum stood without it meanwhile).
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.nodes[i] = startNode(c.t, c.nodes[i].dir, c.yamls[i], clusterJVMArgs...)
	c.waitNode(c.t, i, time.Now().Add(clusterStartTimeout))
}

// Pause stops node i (SIGSTOP): it neither answers nor fails, like a node in a long GC pause
// or a VM frozen by its host. Resume undoes it.
func (c *Cluster) Pause(i int) { _ = syscall.Kill(-c.nodes[i].cmd.Process.Pid, syscall.SIGSTOP) }

// Resume continues node i (SIGCONT).
func (c *Cluster) Resume(i int) { _ = syscall.Kill(-c.nodes[i].cmd.Process.Pid, syscall.SIGCONT) }

// waitNode waits until node i answers CQL.
func (c *Cluster) waitNode(t testing.TB, i int, deadline time.Time) {
	t.Helper()
	for {
		s, err := c.nodeSession(i)
		if err == nil {
			s.Close()
			return
		}
		if c.nodes[i].exited() {
			t.Fatalf("cqltest: cluster node %d exited: %s", i+1, c.nodes[i].logTail(30))
		}
		if time.Now().After(deadline) {
			t.Fatalf("cqltest: cluster node %d did not answer within %s: %v\n%s", i+1, clusterStartTimeout, err, c.nodes[i].logTail(20))
		}
		time.Sleep(time.Second)
	}
}

// allUp checks that every node lists the two others as peers.
func (c *Cluster) allUp() error {
	var mu sync.Mutex
	var errs []string
	var wg sync.WaitGroup
	for i := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := c.nodeSession(i)
			if err == nil {
				defer s.Close()
				var n int
				err = s.Query(`SELECT count(*) FROM system.peers_v2`).Scan(&n)
				if err == nil && n != ClusterNodes-1 {
					err = fmt.Errorf("%d peers", n)
				}
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Sprintf("node %d: %v", i+1, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// nodeSession is a session on node i alone.
func (c *Cluster) nodeSession(i int) (*gocql.Session, error) {
	cl := gocql.NewCluster(c.Host(i))
	cl.DisableInitialHostLookup = true
	cl.Timeout, cl.ConnectTimeout = 5*time.Second, 5*time.Second
	cl.HostFilter = gocql.WhiteListHostFilter(c.Host(i))
	return cl.CreateSession()
}
