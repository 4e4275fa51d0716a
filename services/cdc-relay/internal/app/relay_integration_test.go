package app_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/testinfra"
)

func health(t testing.TB, addr string) healthpb.HealthCheckResponse_ServingStatus {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN
	}
	return resp.Status
}

func waitUntil(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRelayConcurrentCommandsArriveInOrder appends events to many orders from concurrent
// commands through the real append protocol while the relay runs, and checks that all of them
// reach the topic, per aggregate in sequence order, with the contract's headers, on the partition
// the Java client would choose.
func TestRelayConcurrentCommandsArriveInOrder(t *testing.T) {
	e, r, c := startLeading(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	want, _, err := e.produce(ctx, 24, 12, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.waitDistinct(t, 24*12, 60*time.Second)
	dups := verify(t, c.records(), want, 3)
	t.Logf("%d events from %d aggregates arrived in order; %d duplicate deliveries", 24*12, 24, dups)

	// The counter moves once the relay has the broker's ack, which can be after a consumer
	// already read the records: wait for it rather than race it.
	waitUntil(t, "published_total to count every event", 10*time.Second, func() bool {
		return r.sum("ordersys_relay_published_total") >= 24*12
	})
	if st := health(t, r.grpcAddr); st != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health %v, want SERVING", st)
	}
}

// TestRelayCreatesEventTopicsWithTheirRetention: at the start of its term the relay creates the
// order and customer topics with retention.ms = ORDERSYS_KAFKA_RETENTION_MS (7 days by default;
// rebuilds read the event store) and ORDERSYS_KAFKA_PARTITIONS partitions, and their .dlq with
// the broker's retention. Nothing else touches the topics here
// (DescribeConfigs does not auto-create), so what is read is what the relay created.
func TestRelayCreatesEventTopicsWithTheirRetention(t *testing.T) {
	testinfra.Require(t)
	e := newEnv(t, nil)
	e.startInProcess("r1", nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	retention := func(topic string) string {
		var got map[string]string
		waitUntil(t, "topic "+topic+" created", 30*time.Second, func() bool {
			var err error
			got, err = okafka.TopicConfigs(ctx, e.kafka, topic, okafka.ConfigRetentionMs)
			return err == nil
		})
		return got[okafka.ConfigRetentionMs]
	}
	for _, topic := range []string{e.orderTopic, e.customerTopic} {
		if got := retention(topic); got != "604800000" {
			t.Errorf("topic %s: retention.ms = %q, want 604800000 (7 days)", topic, got)
		}
		if n, err := okafka.PartitionCount(ctx, e.kafka, topic); err != nil || n != 3 {
			t.Errorf("topic %s: %d partitions (%v), want 3 (ORDERSYS_KAFKA_PARTITIONS)", topic, n, err)
		}
		if got := retention(okafka.DLQTopic(topic)); got == "604800000" || got == "-1" {
			t.Errorf("topic %s: retention.ms = %s, want the broker's default", okafka.DLQTopic(topic), got)
		}
	}
}

// TestRelayKill9MidStreamThenRestart runs the relay as a child process, kills it with SIGKILL
// while events are flowing, starts it again, and checks that no event is missing (duplicates are
// allowed and counted).
func TestRelayKill9MidStreamThenRestart(t *testing.T) {
	testinfra.Require(t)
	e := newEnv(t, nil)
	c := collect(t, e.kafka, e.orderTopic)
	r := e.startChild("victim", nil)
	waitUntil(t, "leadership", 30*time.Second, func() bool { return r.metric("ordersys_relay_leader") == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type result struct {
		want map[string]int64
		err  error
	}
	done := make(chan result, 1)
	go func() {
		want, _, err := e.produce(ctx, 20, 16, 4*time.Second)
		done <- result{want, err}
	}()
	waitUntil(t, "some events published", 30*time.Second, func() bool { return c.distinct() >= 60 })
	before := c.distinct()
	r.kill()
	t.Logf("killed the relay with SIGKILL after %d events had arrived", before)
	time.Sleep(500 * time.Millisecond)

	// The lease of the dead process runs out after its TTL (4s here); the new process takes it.
	r2 := e.startChild("restarted", nil)
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	c.waitDistinct(t, 20*16, 90*time.Second)
	dups := verify(t, c.records(), res.want, 3)
	t.Logf("all %d events arrived in order after kill -9 and restart; %d duplicate deliveries (at least once); restarted relay dropped %v already-published rows",
		20*16, dups, r2.sum("ordersys_relay_duplicates_dropped_total"))
}

// TestRelayTwoReplicasNeverBothPublish runs two relay processes on one keyspace: only the lease
// holder publishes; when it is killed the other takes over within seconds and nothing is lost.
func TestRelayTwoReplicasNeverBothPublish(t *testing.T) {
	testinfra.Require(t)
	e := newEnv(t, nil)
	c := collect(t, e.kafka, e.orderTopic)
	a := e.startChild("a", nil)
	b := e.startChild("b", nil)

	// Sample both instances' leader gauges all along.
	var mu sync.Mutex
	both, samples := 0, 0
	stopWatch := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(25 * time.Millisecond):
			}
			la, lb := a.metric("ordersys_relay_leader"), b.metric("ordersys_relay_leader")
			mu.Lock()
			samples++
			if la == 1 && lb == 1 {
				both++
			}
			mu.Unlock()
		}
	}()
	var leader, standby *relayProc
	waitUntil(t, "a leader", 30*time.Second, func() bool {
		switch {
		case a.metric("ordersys_relay_leader") == 1:
			leader, standby = a, b
		case b.metric("ordersys_relay_leader") == 1:
			leader, standby = b, a
		}
		return leader != nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	want1, _, err := e.produce(ctx, 10, 6, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.waitDistinct(t, 60, 60*time.Second)
	if got := standby.sum("ordersys_relay_published_total"); got != 0 {
		t.Fatalf("the standby published %v events while the other held the lease", got)
	}

	leader.kill()
	killedAt := time.Now()
	waitUntil(t, "the standby to take over", 30*time.Second, func() bool { return standby.metric("ordersys_relay_leader") == 1 })
	takeover := time.Since(killedAt)
	want2, _, err := e.produce(ctx, 10, 6, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range want2 {
		want1[k] = v
	}
	c.waitDistinct(t, 120, 60*time.Second)
	close(stopWatch)
	<-watchDone
	dups := verify(t, c.records(), want1, 3)
	mu.Lock()
	defer mu.Unlock()
	if both > 0 {
		t.Fatalf("both instances reported holding the lease in %d of %d samples", both, samples)
	}
	t.Logf("takeover %s after kill -9 of the leader (lease TTL 4s); never both leaders in %d samples; %d duplicates",
		takeover.Round(10*time.Millisecond), samples, dups)
}
