package outboxpoll_test

import (
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/outboxpoll"
)

// TestPollerReadsRowsOfCommandInstancesBeforeIssue10 is the rolling upgrade of issue 10: while
// command instances of the earlier release still run, they write outbox rows the old way — the
// bucket from the host's clock, the id from the coordinator's now() — and the new relay must
// read them. A host 1.5 s behind writes, half a second after a minute boundary B, a row into the
// bucket before B whose id is past that bucket's end; the cursors keep a bucket open
// BucketSkew (2 s) past its end for exactly such rows, so the fast cursor delivers it, and so
// does a relay restarted in between (a fresh poller from its checkpoints).
func TestPollerReadsRowsOfCommandInstancesBeforeIssue10(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	boundary := time.Now().Truncate(time.Minute).Add(time.Minute)
	if time.Until(boundary) < 4*time.Second {
		boundary = boundary.Add(time.Minute)
	}
	cfg := testConfig
	cfg.RescanWindow = 30 * time.Second // longer than the test: only the fast cursor can deliver in time
	sk := &sink{}
	stop := run(t, s, cfg, sk)
	defer func() { stop() }()

	// A row the old way, before the boundary, read normally.
	sleepUntil(boundary.Add(-2 * time.Second))
	before := insertOldWay(t, s, gocql.TimeUUID(), time.Now().Add(-1500*time.Millisecond))
	// The relay is restarted (the new release rolls out) right before the boundary.
	sleepUntil(boundary.Add(-500 * time.Millisecond))
	stop()
	stop = run(t, s, cfg, sk)
	// Half a second after the boundary, a host 1.5 s behind still names the bucket before it.
	sleepUntil(boundary.Add(500 * time.Millisecond))
	after := insertOldWay(t, s, gocql.TimeUUID(), time.Now().Add(-1500*time.Millisecond))

	waitFor(t, "both rows of the old writer", 10*time.Second, func() bool {
		seen := sk.seen(outboxpoll.FastCursor)
		return seen[before] >= 1 && seen[after] >= 1
	})
}

// insertOldWay writes an outbox row as command instances before issue 10 did: the bucket from the
// writer's clock (hostNow), the id from the coordinator's now(). It returns the event id.
func insertOldWay(t *testing.T, s *gocql.Session, agg gocql.UUID, hostNow time.Time) string {
	t.Helper()
	ev := gocql.TimeUUID()
	err := s.Query(`INSERT INTO outbox_messages (bucket, shard, id, aggregate_id, aggregate_type, sequence, event_id, event_type,
 schema_version, topic, partition_key, envelope, created_at) VALUES (?,?,now(),?,?,?,?,?,?,?,?,?,?)`,
		cql.Bucket(hostNow), cql.ShardOf(agg.String()), agg, "Order", 1, ev, "OrderShipped", 1, "order-events",
		agg.String(), []byte("envelope"), hostNow).Exec()
	if err != nil {
		t.Fatalf("insert outbox row the old way: %v", err)
	}
	return ev.String()
}
