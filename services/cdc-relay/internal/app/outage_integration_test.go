package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/gocql/gocql"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ordersys/ordersys/pkg/cql"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/kafka/kafkatest"
	"github.com/ordersys/ordersys/pkg/testinfra"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/outboxpoll"
)

// TestRelayKafkaOutageLosesNothing stops a private Kafka (the shared one is left alone) while
// events flow, checks that the breaker opens, health turns NOT_SERVING and no checkpoint moves
// past an unpublished row, then restarts Kafka and checks that every event arrives in order and
// the breaker closes.
func TestRelayKafkaOutageLosesNothing(t *testing.T) {
	testinfra.RequireCassandra(t)
	broker := kafkatest.Start(t)
	e := newEnv(t, broker.Env(""))
	c := collect(t, e.kafka, e.orderTopic)
	r := e.startInProcess("r1", map[string]string{
		"ORDERSYS_RELAY_BREAKER_FAILURES": "3", "ORDERSYS_RELAY_BREAKER_TIMEOUT": "1s",
		"ORDERSYS_RELAY_RETRY_MAX": "1s", "ORDERSYS_KAFKA_WRITE_TIMEOUT": "2s",
	})
	waitUntil(t, "leadership", 60*time.Second, func() bool { return r.metric("ordersys_relay_leader") == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	want, _, err := e.produce(ctx, 10, 4, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.waitDistinct(t, 40, 60*time.Second)
	waitUntil(t, "published_total to count them", 10*time.Second, func() bool { return r.sum("ordersys_relay_published_total") >= 40 })
	published := r.sum("ordersys_relay_published_total")

	broker.Kill()
	t.Log("kafka killed")
	outageStart := time.Now()
	// More events while the broker is down: new aggregates, and the old ones continue.
	more, _, err := e.produce(ctx, 10, 4, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for agg := range want {
		if _, err := e.appendOrder(ctx, agg, 4, 3); err != nil {
			t.Fatal(err)
		}
		want[agg] = 7
	}
	for k, v := range more {
		want[k] = v
	}
	waitUntil(t, "the breaker to open", 30*time.Second, func() bool { return r.metric("ordersys_relay_breaker_state") == 2 })
	waitUntil(t, "health NOT_SERVING", 10*time.Second, func() bool { return health(t, r.grpcAddr) == healthpb.HealthCheckResponse_NOT_SERVING })
	time.Sleep(2 * time.Second) // let the readers poll past the new rows
	if got := r.sum("ordersys_relay_published_total"); got != published {
		t.Fatalf("published_total moved from %v to %v with the broker down", published, got)
	}
	if got := r.sum("ordersys_relay_dead_lettered_total"); got != 0 {
		t.Fatalf("the outage dead-lettered %v messages", got)
	}
	// No checkpoint is past a row written during the outage.
	checkCheckpointsBefore(t, e, outageStart)
	t.Logf("during the outage: breaker open, health NOT_SERVING, %v changes in flight, checkpoint age %.1fs",
		r.metric("ordersys_relay_in_flight"), r.metric(`ordersys_relay_checkpoint_age_seconds{cursor="outbox-poll"}`))

	broker.Restart()
	outage := time.Since(outageStart)
	c.waitDistinct(t, 10*7+10*4, 90*time.Second)
	waitUntil(t, "the breaker to close", 30*time.Second, func() bool { return r.metric("ordersys_relay_breaker_state") == 0 })
	waitUntil(t, "health SERVING", 10*time.Second, func() bool { return health(t, r.grpcAddr) == healthpb.HealthCheckResponse_SERVING })
	dups := verify(t, c.records(), want, 3)
	t.Logf("outage of %s: all %d events arrived in order; %d duplicate deliveries; breaker opened %v times, closed %v times, %v publish attempts rejected while open",
		outage.Round(100*time.Millisecond), 10*7+10*4, dups, r.metric(`ordersys_relay_breaker_transitions_total{to="open"}`),
		r.metric(`ordersys_relay_breaker_transitions_total{to="closed"}`), r.metric(`ordersys_relay_publish_failures_total{kind="rejected"}`))
	if r.metric(`ordersys_relay_breaker_transitions_total{to="open"}`) < 1 || r.metric(`ordersys_relay_breaker_transitions_total{to="closed"}`) < 1 {
		t.Fatal("the breaker's opening and closing are not in the metrics")
	}
}

// TestDeadLetterOfARelayStoppedDuringAnOutageReachesItsTopic: a relay reads a poison outbox
// row while its broker is down, so the dead letter cannot be sent, and stops (a rolling
// deploy, a handover); the next relay, once the broker is back, sends it to the dead-letter
// topic and records it. Before, the relay recorded the dead letter in the table first, and the
// next one, finding the record, settled the row without ever sending it.
func TestDeadLetterOfARelayStoppedDuringAnOutageReachesItsTopic(t *testing.T) {
	testinfra.RequireCassandra(t)
	broker := kafkatest.Start(t)
	e := newEnv(t, broker.Env(""))
	dlq := collect(t, e.kafka, okafka.DLQTopic(e.orderTopic))
	settings := map[string]string{"ORDERSYS_RELAY_BREAKER_FAILURES": "3", "ORDERSYS_RELAY_BREAKER_TIMEOUT": "1s",
		"ORDERSYS_RELAY_RETRY_MAX": "1s", "ORDERSYS_KAFKA_WRITE_TIMEOUT": "2s"}
	r := e.startInProcess("r1", settings)
	waitUntil(t, "leadership", 60*time.Second, func() bool { return r.metric("ordersys_relay_leader") == 1 })
	// One event through first: the relay has made its topics and is publishing.
	c := collect(t, e.kafka, e.orderTopic)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, _, err := e.produce(ctx, 1, 1, time.Second); err != nil {
		t.Fatal(err)
	}
	c.waitDistinct(t, 1, 60*time.Second)

	broker.Kill()
	row := e.insertPoisonRow()
	waitUntil(t, "the dead letter to be tried", 30*time.Second, func() bool { return r.sum("ordersys_relay_publish_failures_total") > 0 })
	r.stop()
	broker.Restart()
	e.startInProcess("r2", settings)

	dlq.waitDistinct(t, 1, 90*time.Second)
	if id, _ := okafka.Header(dlq.records()[0].headers, okafka.HeaderDLQID); id != row.String() {
		t.Fatalf("dead letter %s on the topic, want the row's id %s", id, row)
	}
	waitUntil(t, "the dead letter's record", 30*time.Second, func() bool {
		found, err := cql.NewDeadLetters(e.session).Exists(ctx, e.orderTopic, row)
		return err == nil && found
	})
}

// checkCheckpointsBefore checks that no fast-cursor checkpoint is at or past an outbox row
// written after t.
func checkCheckpointsBefore(t *testing.T, e *env, after time.Time) {
	t.Helper()
	type pos struct {
		bucket int64
		last   gocql.UUID
	}
	cps := map[int]pos{}
	iter := e.session.Query(`SELECT shard, bucket, last_id FROM relay_checkpoints WHERE name = ?`, outboxpoll.FastCursor).Iter()
	var shard int
	var p pos
	for iter.Scan(&shard, &p.bucket, &p.last) {
		cps[shard] = p
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
	iter = e.session.Query(`SELECT bucket, shard, id FROM outbox_messages`).Iter()
	var b int64
	var id gocql.UUID
	n := 0
	for iter.Scan(&b, &shard, &id) {
		if id.Time().Before(after) {
			continue
		}
		n++
		cp, ok := cps[shard]
		if ok && (cp.bucket > b || (cp.bucket == b && cp.last != (gocql.UUID{}) && !id.Time().After(cp.last.Time()))) {
			t.Errorf("shard %d checkpoint (bucket %d, %v) is past unpublished row %v of bucket %d", shard, cp.bucket, cp.last.Time(), id.Time(), b)
		}
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no outbox row written during the outage")
	}
}
