package app_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/testinfra"
)

// BenchmarkCommandToTopic measures, with the relay's default settings (outbox-poll, poll 50ms,
// safety window 250ms), the time from the start of a command (the event store's Append, the
// command service's write path) to the moment a consumer in its own group reads the event from
// the topic. Eight writers append one or two events per command to their own orders, back to
// back with 20ms pauses; b.N is the number of events, appended once the relay holds every shard
// and one event went through (its start-up is not latency). It reports p50, p90, p99 and max in
// ms to a test consumer reading the record, and p50 and p99 to the record's timestamp (when the
// relay's producer took it: the topic side, without the consumer's own delays).
//
//	go test -run '^$' -bench BenchmarkCommandToTopic -benchtime 1000x ./internal/app/
func BenchmarkCommandToTopic(b *testing.B) {
	testinfra.Require(b)
	e := newEnv(b, nil)
	c := collect(b, e.kafka, e.orderTopic)
	// Defaults of the relay, except where this test's keyspace, topics and ports must go.
	r := e.startInProcess("bench", map[string]string{
		"ORDERSYS_RELAY_RESCAN_WINDOW": "30s", "ORDERSYS_RELAY_LEASE_TTL": "10s", "ORDERSYS_RELAY_RECOVERY_INTERVAL": "3s",
		"ORDERSYS_RELAY_HEALTH_INTERVAL": "2s", "ORDERSYS_KAFKA_PARTITIONS": "3",
	})
	// Measure a running relay, not its start: every shard held, and one event through it (the
	// cursors started, the producer and the consumer connected). The start-up is measured by
	// BenchmarkRelayThroughput (relay_first_event_s).
	waitUntil(b, "every shard held", 30*time.Second, func() bool { return r.metric("ordersys_relay_shards_held") == cql.OutboxShards })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := e.appendOrder(ctx, uuid.NewString(), 0, 1); err != nil {
		b.Fatal(err)
	}
	c.waitDistinct(b, 1, time.Minute)
	warm := len(c.records())

	const writers = 8
	var mu sync.Mutex
	issued := map[string]time.Time{}
	var appends []time.Duration
	var wg sync.WaitGroup
	var total int
	b.ResetTimer()
	for w := 0; w < writers; w++ {
		n := b.N / writers
		if w < b.N%writers {
			n++
		}
		total += n
		wg.Add(1)
		go func() {
			defer wg.Done()
			agg, seq := uuid.NewString(), 0
			for done := 0; done < n; {
				if seq >= 20 {
					agg, seq = uuid.NewString(), 0
				}
				k := min(1+done%2, n-done)
				start := time.Now()
				got, err := e.appendOrder(ctx, agg, seq, k)
				if err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				appends = append(appends, time.Since(start))
				for s, at := range got {
					issued[fmt.Sprintf("%s#%d", agg, s)] = at
				}
				mu.Unlock()
				seq += k
				done += k
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	c.waitDistinct(b, warm+total, 2*time.Minute)
	b.StopTimer()

	first, produced := map[string]time.Time{}, map[string]time.Time{}
	for _, rec := range c.records() {
		k := fmt.Sprintf("%s#%d", rec.agg, rec.seq)
		if _, ok := first[k]; !ok {
			first[k], produced[k] = rec.at, rec.produced
		}
	}
	var lat, toTopic []time.Duration
	for k, at := range issued {
		if got, ok := first[k]; ok {
			lat = append(lat, got.Sub(at))
			toTopic = append(toTopic, produced[k].Sub(at))
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(percentile(lat, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(lat, 0.90)), "p90-ms")
	b.ReportMetric(ms(percentile(lat, 0.99)), "p99-ms")
	b.ReportMetric(ms(percentile(lat, 1)), "max-ms")
	b.ReportMetric(ms(percentile(appends, 0.50)), "append-p50-ms")
	// To the record's timestamp (set by the relay's producer on this host): the topic side
	// without the test consumer's own delays.
	b.ReportMetric(ms(percentile(toTopic, 0.50)), "produced-p50-ms")
	b.ReportMetric(ms(percentile(toTopic, 0.99)), "produced-p99-ms")
	if m, err := r.metrics(); err == nil {
		var hist []string
		for _, le := range []string{"0.1", "0.2", "0.3", "0.4", "0.5", "0.75", "1", "2", "+Inf"} {
			hist = append(hist, fmt.Sprintf("≤%ss:%v", le, m[`ordersys_relay_publish_delay_seconds_bucket{le="`+le+`"}`]))
		}
		b.Logf("relay commit→ack histogram (cumulative): %v", hist)
	}
	b.ReportMetric(0, "ns/op")
	b.Logf("%d events from %d writers: command-to-consumer p50 %s p90 %s p99 %s max %s; command-to-record-timestamp p50 %s p99 %s (the append itself: p50 %s p99 %s)",
		len(lat), writers, percentile(lat, 0.5).Round(time.Millisecond), percentile(lat, 0.9).Round(time.Millisecond),
		percentile(lat, 0.99).Round(time.Millisecond), percentile(lat, 1).Round(time.Millisecond),
		percentile(toTopic, 0.5).Round(time.Millisecond), percentile(toTopic, 0.99).Round(time.Millisecond),
		percentile(appends, 0.5).Round(time.Millisecond), percentile(appends, 0.99).Round(time.Millisecond))
}
