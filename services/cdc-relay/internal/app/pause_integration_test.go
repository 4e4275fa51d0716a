package app_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordersys/ordersys/pkg/testinfra"
)

// TestPausedRelayPublishesNothingAfterItsLease stops the lease holder with SIGSTOP (as a long GC
// or VM pause would) for longer than its lease, lets a second relay take over and publish newer
// events, then lets the first one run again. The first one's memory says those aggregates are
// at their old sequences and its cursor is behind the new rows: it must not publish them again
// (duplicates after newer records, i.e. a key's records out of order for a consumer) however
// its renewal and its lanes race on waking; its lease's term ran out while it was stopped.
func TestPausedRelayPublishesNothingAfterItsLease(t *testing.T) {
	testinfra.Require(t)
	e := newEnv(t, nil)
	c := collect(t, e.kafka, e.orderTopic)
	ttl := map[string]string{"ORDERSYS_RELAY_LEASE_TTL": "3s", "ORDERSYS_RELAY_POLL_INTERVAL": "20ms"}
	paused := e.startChild("paused", ttl)
	waitUntil(t, "leadership", 30*time.Second, func() bool { return paused.metric("ordersys_relay_leader") == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const aggs, first, second = 12, 3, 3
	want := map[string]int64{}
	for range aggs {
		id := uuid.NewString()
		if _, err := e.appendOrder(ctx, id, 0, first); err != nil {
			t.Fatal(err)
		}
		want[id] = first + second
	}
	c.waitDistinct(t, aggs*first, time.Minute)
	time.Sleep(time.Second) // its progress saved, its pipeline idle
	published := paused.sum("ordersys_relay_published_total")
	if published < aggs*first {
		t.Fatalf("the first relay published %v records, want %d", published, aggs*first)
	}

	if err := paused.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = paused.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)           // so that it can stop cleanly on SIGTERM if the test fails early
	time.Sleep(4 * time.Second) // past its 3 s lease
	taker := e.startChild("taker", ttl)
	waitUntil(t, "the second relay leads", 30*time.Second, func() bool { return taker.metric("ordersys_relay_leader") == 1 })
	for id := range want {
		if _, err := e.appendOrder(ctx, id, first, second); err != nil {
			t.Fatal(err)
		}
	}
	c.waitDistinct(t, aggs*(first+second), time.Minute)

	resume()
	time.Sleep(3 * time.Second) // its pollers and lanes have run, its term has ended
	if after := paused.sum("ordersys_relay_published_total"); after != published {
		t.Errorf("the paused relay published %v records after waking past its lease", after-published)
	}
	if dups := verify(t, c.records(), want, 3); dups != 0 {
		t.Errorf("%d duplicate deliveries: the paused relay published again what the second one had", dups)
	}
	// (Awake again, it rejoins and gets its share of the shards back in fresh terms, which read
	// the progress from the store: nothing new to publish.)
	t.Logf("on waking, the paused relay held back %v records (fenced); the second relay dropped %v already-published rows",
		paused.metric(`ordersys_relay_publish_failures_total{kind="fenced"}`), taker.sum("ordersys_relay_duplicates_dropped_total"))
}
