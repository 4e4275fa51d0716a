package app_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	kafkago "github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/testinfra"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/app"
)

// Size of BenchmarkRepublish's event store.
const (
	republishBenchAggregates = 2000
	republishBenchPerAgg     = 5
	republishBenchEvents     = republishBenchAggregates * republishBenchPerAgg
	// republishBenchInFlight is the calls raw-produce-16 keeps in flight: the publisher's slots.
	republishBenchInFlight = 16
)

// BenchmarkRepublish measures, side by side in one run, events per second over the same 10,000
// events of 2,000 orders (5 each, appended with the event store's Append before the timer
// starts, concurrently, background outbox writes finished):
//
//   - raw-read: a raw paged CQL read of every event as Republish walks them: the aggregates
//     walked with EventStore.Aggregates (pages of 100), each one's rows read with SELECT * ...
//     WHERE aggregate_id = ? (pages of 500), 16 aggregates of a page at once (as Republish);
//   - raw-scan: one paged SELECT * of the whole table (1,000 rows a page), the floor of any read;
//   - republish: Admin.Republish, the code path of the admin API's RepublishEvents and of
//     `ordersysctl republish` (default page size and chunking, rate 1,000,000/s, the API's
//     maximum, so that pacing does not count), into a fresh topic of its own per iteration
//     (created before the timer; Republish's own topic check stays timed), timed until it
//     returns, when Kafka has acknowledged every event (acks=all);
//   - raw-produce: the same envelopes through the project's publisher with the relay's settings,
//     one call per aggregate, one call after another (Republish's call shape without its reads);
//   - raw-produce-16: the same calls, 16 in flight at once (the publisher's slots): what
//     publishing several aggregates at once, each one's calls in order, could reach.
//
// It reports events/s for each and, in republish, the ratios republish/raw-read and
// republish/raw-scan (the target is at least 0.5). Figures only: it never fails on time.
//
//	cd services/cdc-relay && go test -run '^$' -bench Republish -benchtime 1x ./internal/app/
func BenchmarkRepublish(b *testing.B) {
	testinfra.Require(b)
	e := newEnv(b, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	aggs := appendOrders(ctx, b, e, republishBenchAggregates, republishBenchPerAgg)
	cfg := e.config(nil)
	var readRate, scanRate float64

	for _, run := range []struct {
		name string
		read func(context.Context, *testing.B, *env) int
		rate *float64
	}{{"raw-read", rawRead, &readRate}, {"raw-scan", rawScan, &scanRate}} {
		b.Run(run.name, func(b *testing.B) {
			for range b.N {
				if n := run.read(ctx, b, e); n != republishBenchEvents {
					b.Fatalf("%s found %d events, want %d", run.name, n, republishBenchEvents)
				}
			}
			*run.rate = float64(republishBenchEvents*b.N) / b.Elapsed().Seconds()
			b.ReportMetric(*run.rate, "events/s")
			b.ReportMetric(0, "ns/op")
		})
	}

	b.Run("republish", func(b *testing.B) {
		admin, closeAdmin, err := app.NewAdmin(cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer closeAdmin()
		b.ResetTimer()
		for i := range b.N {
			b.StopTimer()
			topic := testinfra.TopicName(b, fmt.Sprintf("republish-%d", i))
			testinfra.CreateTopics(b, testinfra.KafkaBrokers(), cfg.Partitions, topic)
			var last app.RepublishProgress
			b.StartTimer()
			err := admin.Republish(ctx, e.store, app.RepublishRequest{Job: "bench-" + uuid.NewString(), Topic: topic,
				Rate: 1_000_000}, func(p app.RepublishProgress) { last = p })
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			if !last.Done || last.Events != republishBenchEvents || last.Aggregates != republishBenchAggregates {
				b.Fatalf("republish ended with %+v, want %d events of %d aggregates", last, republishBenchEvents, republishBenchAggregates)
			}
		}
		rate := float64(republishBenchEvents*b.N) / b.Elapsed().Seconds()
		b.ReportMetric(rate, "events/s")
		if readRate > 0 && scanRate > 0 {
			b.ReportMetric(rate/readRate, "republish/raw-read")
			b.ReportMetric(rate/scanRate, "republish/raw-scan")
		}
		b.ReportMetric(0, "ns/op")
	})

	// The same envelopes as Republish sends, one call's worth per aggregate.
	calls := make([][]kafkago.Message, 0, len(aggs))
	raw := testinfra.TopicName(b, "raw")
	testinfra.CreateTopics(b, testinfra.KafkaBrokers(), cfg.Partitions, raw)
	for _, id := range aggs {
		envs, err := e.store.LoadRaw(ctx, id, 1, republishBenchPerAgg)
		if err != nil {
			b.Fatal(err)
		}
		msgs := make([]kafkago.Message, 0, len(envs))
		for _, env := range envs {
			value, err := codec.MarshalEnvelope(env)
			if err != nil {
				b.Fatal(err)
			}
			msgs = append(msgs, kafkago.Message{Topic: raw, Key: []byte(env.AggregateID), Value: value,
				Headers: okafka.EnvelopeHeaders(env, env.TraceParent, env.TraceState)})
		}
		calls = append(calls, msgs)
	}
	for _, run := range []struct {
		name     string
		inFlight int
	}{{"raw-produce", 1}, {"raw-produce-16", republishBenchInFlight}} {
		b.Run(run.name, func(b *testing.B) {
			pub := okafka.NewPublisher(okafka.PublisherConfig{Cluster: e.kafka, WriteTimeout: cfg.WriteTimeout, MaxMessageBytes: cfg.MaxMessageBytes})
			defer pub.Close()
			b.ResetTimer()
			for range b.N {
				if err := produce(ctx, pub, calls, run.inFlight); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(republishBenchEvents*b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// appendOrders appends perAgg events to each of n new orders, 32 orders at a time, waits for
// the background outbox writes, and returns the orders' ids.
func appendOrders(ctx context.Context, b *testing.B, e *env, n, perAgg int) []string {
	b.Helper()
	ids := make([]string, n)
	next := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := range next {
				ids[i] = uuid.NewString()
				if _, err := e.appendOrder(ctx, ids[i], 0, perAgg); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if err := errors.Join(all...); err != nil {
		b.Fatal(err)
	}
	if err := e.store.Close(ctx); err != nil {
		b.Fatal(err)
	}
	return ids
}

// rawRead walks every aggregate of the event store and reads each one's rows, decoding each
// column into the driver's own types and nothing further; it returns the rows read.
func rawRead(ctx context.Context, b *testing.B, e *env) int {
	var n atomic.Int64
	for after := cql.MinToken; ; {
		page, last, err := e.store.Aggregates(ctx, after, 100)
		if err != nil {
			b.Fatal(err)
		}
		if len(page) == 0 {
			return int(n.Load())
		}
		var g errgroup.Group
		g.SetLimit(republishBenchInFlight) // as many at once as Republish reads
		for _, id := range page {
			g.Go(func() error {
				iter := e.session.Query(`SELECT * FROM event_store WHERE aggregate_id = ?`, id).WithContext(ctx).PageSize(500).Iter()
				row, err := iter.RowData()
				if err != nil {
					return err
				}
				for iter.Scan(row.Values...) {
					n.Add(1)
				}
				return iter.Close()
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		after = last
	}
}

// rawScan reads every row of event_store with one paged query (1,000 rows a page): the floor.
func rawScan(ctx context.Context, b *testing.B, e *env) int {
	iter := e.session.Query(`SELECT * FROM event_store`).WithContext(ctx).PageSize(1000).Iter()
	row, err := iter.RowData()
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for iter.Scan(row.Values...) {
		n++
	}
	if err := iter.Close(); err != nil {
		b.Fatal(err)
	}
	return n
}

// produce sends every call through pub, inFlight calls at a time.
func produce(ctx context.Context, pub *okafka.Publisher, calls [][]kafkago.Message, inFlight int) error {
	next := make(chan []kafkago.Message)
	errs := make(chan error, len(calls))
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			for msgs := range next {
				if err := errors.Join(pub.Publish(ctx, msgs)...); err != nil {
					errs <- err
				}
			}
		})
	}
	for _, msgs := range calls {
		next <- msgs
	}
	close(next)
	wg.Wait()
	close(errs)
	return <-errs
}
