package app_test

import (
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/testinfra"
)

// TestShardedRelayWaitsForAnOlderRelay: while a relay of the release before sharding holds the
// single lease "cdc-relay" over the whole outbox, a sharded relay holds no shard (a rolling
// upgrade never has two publishers of a shard); once that lease is gone it takes every shard.
func TestShardedRelayWaitsForAnOlderRelay(t *testing.T) {
	testinfra.Require(t)
	e := newEnv(t, nil)
	if err := e.session.Query(`INSERT INTO leases (name, owner, acquired_at) VALUES ('cdc-relay', 'relay-of-the-last-release', toTimestamp(now())) USING TTL 60`).Exec(); err != nil {
		t.Fatal(err)
	}
	r := e.startInProcess("new", map[string]string{"ORDERSYS_RELAY_LEASE_TTL": "3s"})
	deadline := time.Now().Add(5 * time.Second) // more than one membership round (TTL/3)
	for time.Now().Before(deadline) {
		if n := r.metric("ordersys_relay_shards_held"); n != 0 {
			t.Fatalf("the sharded relay holds %v shards while an older relay holds the whole outbox", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := e.session.Query(`DELETE FROM leases WHERE name = 'cdc-relay'`).Exec(); err != nil { // the old relay stopped
		t.Fatal(err)
	}
	waitUntil(t, "every shard taken", 30*time.Second, func() bool { return r.metric("ordersys_relay_shards_held") == 8 })
}
