package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/ordersys/ordersys/pkg/codec"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/testinfra"
)

// BenchmarkRelayThroughput measures, in one run, events per second from outbox rows to a
// consumer of the topic through the relay (default settings), beside a raw kafka-go producer
// (the project's publisher: acks=all, Murmur2 keys, the relay's batch timeout) sending the same
// envelopes, with the same headers, to a topic of its own, read by a consumer the same way.
// b.N events are appended first (10 per order, outside the measurement). It reports both rates
// and their ratio (the target is at least 0.7), and for each phase what an event cost
// (testinfra.CostMeter): relay_ and raw_ go_cpu_ms/op (this process: the relay or the producer,
// and the test consumer), cass_cpu_ms/op (the local Cassandra) and cass_req/op, per event.
//
//	go test -run '^$' -bench BenchmarkRelayThroughput -benchtime 5000x ./internal/app/
func BenchmarkRelayThroughput(b *testing.B) {
	testinfra.Require(b)
	e := newEnv(b, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	var aggs []string
	for n := 0; n < b.N; n += 10 {
		id := uuid.NewString()
		if _, err := e.appendOrder(ctx, id, 0, min(10, b.N-n)); err != nil {
			b.Fatal(err)
		}
		aggs = append(aggs, id)
	}
	// The same envelopes, for the raw producer.
	var msgs []kafkago.Message
	raw := testinfra.TopicName(b, "raw")
	for _, id := range aggs {
		envs, err := e.store.LoadRaw(ctx, id, 1, 100)
		if err != nil {
			b.Fatal(err)
		}
		for _, env := range envs {
			value, err := codec.MarshalEnvelope(env)
			if err != nil {
				b.Fatal(err)
			}
			msgs = append(msgs, kafkago.Message{Topic: raw, Key: []byte(env.AggregateID), Value: value,
				Headers: okafka.EnvelopeHeaders(env, env.TraceParent, env.TraceState)})
		}
	}
	rawC := collect(b, e.kafka, raw)
	relayC := collect(b, e.kafka, e.orderTopic)
	b.ResetTimer()

	// Raw: the publisher alone, in batches of 500 (what the relay reads per query).
	cost := testinfra.StartCost(e.session)
	start := time.Now()
	pub := okafka.NewPublisher(okafka.PublisherConfig{Cluster: e.kafka})
	for i := 0; i < len(msgs); i += 500 {
		for _, err := range pub.Publish(ctx, msgs[i:min(i+500, len(msgs))]) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	rawC.waitDistinct(b, len(msgs), 5*time.Minute)
	rawRate := float64(len(msgs)) / time.Since(start).Seconds()
	rawSteady := rawC.steadyRate()
	_ = pub.Close()
	cost.Report(b, len(msgs), "raw_")

	// The relay: from its start (leadership, shard assignment and the first outbox reads
	// included) to the last event read from the topic.
	cost = testinfra.StartCost(e.session)
	start = time.Now()
	e.startInProcess("bench", map[string]string{"ORDERSYS_KAFKA_PARTITIONS": "3"})
	relayC.waitDistinct(b, len(msgs), 5*time.Minute)
	relayRate := float64(len(msgs)) / time.Since(start).Seconds()
	cost.Report(b, len(msgs), "relay_")
	relaySteady, firstAfter := relayC.steadyRate(), relayC.first().Sub(start)
	b.StopTimer()

	b.ReportMetric(relayRate, "relay_events/s")
	b.ReportMetric(rawRate, "raw_events/s")
	b.ReportMetric(relayRate/rawRate, "relay/raw")
	// The same between the first and the last event read (the relay's start-up left out).
	b.ReportMetric(relaySteady, "relay_steady_events/s")
	b.ReportMetric(rawSteady, "raw_steady_events/s")
	b.ReportMetric(relaySteady/rawSteady, "steady_relay/raw")
	b.ReportMetric(firstAfter.Seconds(), "relay_first_event_s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRelayReplicas measures, in one run, events per second from outbox rows to a consumer
// of the topic with 1, 2 and 3 relays sharing the outbox shards (each sub-benchmark on a fresh
// keyspace and topic with b.N events appended first, its relays started together with a 3 s
// lease TTL, timed until the last event is read). On a 2-core machine the relays, Cassandra and
// Kafka share the cores, so this shows the cost of sharing more than a speed-up.
//
//	go test -run '^$' -bench BenchmarkRelayReplicas -benchtime 5000x ./internal/app/
func BenchmarkRelayReplicas(b *testing.B) {
	testinfra.Require(b)
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("relays=%d", n), func(b *testing.B) {
			e := newEnv(b, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			defer cancel()
			for i := 0; i < b.N; i += 10 {
				if _, err := e.appendOrder(ctx, uuid.NewString(), 0, min(10, b.N-i)); err != nil {
					b.Fatal(err)
				}
			}
			c := collect(b, e.kafka, e.orderTopic)
			b.ResetTimer()
			start := time.Now()
			for i := range n {
				e.startInProcess(fmt.Sprintf("r%d", i), map[string]string{"ORDERSYS_KAFKA_PARTITIONS": "3", "ORDERSYS_RELAY_LEASE_TTL": "3s"})
			}
			c.waitDistinct(b, b.N, 5*time.Minute)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
