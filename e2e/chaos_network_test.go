package e2e_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/cql/cqlfault"
)

// chaosNetwork is the network's share of the chaos: a real TCP fault proxy (toxiproxy,
// pkg/cql/cqlfault) between every service of the chaos system and the shared Cassandra, on which
// the monkey now and then stalls or resets the connections. A stall delays every answer by
// more than the clients' 3 s deadline, so commands time out with their conditional batches on
// the way (the outcome unknown to the service: it answers Unavailable and the client repeats
// the command id); a reset drops every connection that carries an answer while it lasts (a
// batch that committed, its answer lost; a new connection is dropped at its handshake). After
// each fault every service must be SERVING again within chaosNetworkRecovery: Cassandra never
// went down, so a driver that keeps a node marked down long after a blip fails the test. Not
// used with E2E_CHAOS_CLUSTER=3, whose faults are the nodes' own.
type chaosNetwork struct {
	proxy *cqlfault.Proxy
}

// startChaosNetwork starts the proxy in front of the shared Cassandra and points the system at
// it; nil when the servers are clustered.
func startChaosNetwork(t *testing.T, servers chaosServers, s *system) *chaosNetwork {
	if servers.clustered() {
		return nil
	}
	n := &chaosNetwork{proxy: cqlfault.Start(t)}
	s.cql, s.cqlProxy = []string{n.proxy.Listen}, true
	return n
}

// chaosNetworkRecovery bounds how long after a network fault every service may take to be
// SERVING again (their health checks probe Cassandra every few seconds).
const chaosNetworkRecovery = 20 * time.Second

// fault injects one network fault for a while, removes it, checks that every service of s is
// back within chaosNetworkRecovery, and returns what it did.
func (n *chaosNetwork) fault(t *testing.T, s *system, rnd *rand.Rand) string {
	const name = "chaos"
	var toxic, did string
	var lasts time.Duration
	if rnd.IntN(2) == 0 {
		// Held longer than its latency, so that the answers of the first moments wait all of it.
		latency := 3500 + rnd.IntN(1500)
		lasts = time.Duration(latency+500+rnd.IntN(1500)) * time.Millisecond
		toxic = fmt.Sprintf(`{"name":%q,"type":"latency","stream":"downstream","attributes":{"latency":%d}}`, name, latency)
		did = "cql answers stalled"
	} else {
		lasts = time.Duration(200+rnd.IntN(800)) * time.Millisecond
		toxic = fmt.Sprintf(`{"name":%q,"type":"reset_peer","stream":"downstream","attributes":{"timeout":0}}`, name)
		did = "cql connections reset"
	}
	n.proxy.AddToxic(t, toxic)
	time.Sleep(lasts)
	n.proxy.RemoveToxic(name)
	for _, inst := range s.instances() {
		if err := s.waitServingWithin(inst, chaosNetworkRecovery); err != nil {
			t.Errorf("after %s for %s: %v", did, lasts.Round(time.Millisecond), err)
		}
	}
	return did
}
