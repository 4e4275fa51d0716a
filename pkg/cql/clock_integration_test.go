package cql_test

import (
	"context"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
)

// TestClusterClockCorrectsASkewedHost: a host whose clock is 40 s behind reads the cluster's time
// (here the test machine's own, where Cassandra runs) through ClusterClock.
func TestClusterClockCorrectsASkewedHost(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	const skew = -40 * time.Second
	clock := cql.NewClusterClock(s, func() time.Time { return time.Now().Add(skew) })
	if d := time.Since(clock.Now()); d < 39*time.Second {
		t.Fatalf("before the first sync the clock is %s behind, want the local (skewed) clock", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := clock.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(clock.Now()).Abs(); d > time.Second {
		t.Errorf("after a sync the cluster clock is %s off the cluster's time (offset %s), want < 1s", d, clock.Offset())
	}
}
