package cql_test

import (
	"context"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
)

// BenchmarkLoadLargeAggregate loads one order of 10,000 events three ways, side by side in one
// run: the newest snapshot (taken at version 9,900) plus the tail, as the command service
// loads; a full replay of every event into the order; a raw paged CQL read of the same
// partition that decodes nothing and reads the sequence and payload only (the floor of any
// replay); and the same raw read of every column the replay reads (what the store's row layout
// costs, apart from decoding and applying). One iteration runs all four; it reports each one's
// milliseconds and the ratios (targets: snapshot ≥ 20× faster than replay, replay ≥ 0.7× the
// raw read's speed).
//
//	go test -run '^$' -bench BenchmarkLoadLargeAggregate -benchtime 5x ./cql/
func BenchmarkLoadLargeAggregate(b *testing.B) {
	const events, snapshotAt = 10_000, 9_900
	s, _ := cqltest.Keyspace(b)
	reg := codec.NewRegistry()
	st := cql.NewEventStore(s, reg, cql.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	id := ids.New()
	o := order.New(id)
	item := func(q int) []order.Item {
		return []order.Item{{ProductID: ids.Probe, Quantity: int32(1 + q%9000), UnitPriceCents: 100}}
	}
	cmds := func(n int) order.Command {
		if n == 0 {
			return order.Create{OrderID: id, CustomerID: ids.New(), Items: item(0), Customer: order.CustomerActive}
		}
		return order.UpdateItems{Items: item(n)}
	}
	const perAppend = 100
	for n := 0; n < events; {
		var envs []es.Envelope
		for k := 0; k < perAppend && n < events; k, n = k+1, n+1 {
			evs, err := o.Decide(cmds(n), time.Now())
			if err != nil {
				b.Fatal(err)
			}
			batch := es.NewEnvelopes(o, evs, es.Metadata{CausationID: ids.New(), CorrelationID: "bench"}, time.Now().UTC().Truncate(time.Millisecond), ids.New)
			if err := es.Replay(o, batch); err != nil {
				b.Fatal(err)
			}
			envs = append(envs, batch...)
		}
		if _, err := st.Append(ctx, es.AppendRequest{AggregateID: id, AggregateType: order.AggregateType,
			ExpectedVersion: envs[0].Sequence - 1, Events: envs}); err != nil {
			b.Fatal(err)
		}
		if n == snapshotAt {
			state, err := codec.OrderSnapshotCodec{}.Take(o)
			if err != nil {
				b.Fatal(err)
			}
			if err := st.SaveSnapshot(ctx, es.Snapshot{AggregateID: id, AggregateType: order.AggregateType, Version: o.Version(),
				SchemaVersion: codec.SnapshotSchemaVersion, State: state, TakenAt: time.Now().UTC()}); err != nil {
				b.Fatal(err)
			}
		}
	}

	var snap, replay, raw, rawAll time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		sn, err := st.LatestSnapshot(ctx, id, 0)
		if err != nil {
			b.Fatal(err)
		}
		restored, err := codec.OrderSnapshotCodec{}.Restore(sn)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.Load(ctx, id, sn.Version+1, func(env es.Envelope) error { return es.ApplyEnvelope(restored, env) }); err != nil {
			b.Fatal(err)
		}
		snap += time.Since(t0)

		t0 = time.Now()
		full := order.New(id)
		if _, err := st.Load(ctx, id, 1, func(env es.Envelope) error { return es.ApplyEnvelope(full, env) }); err != nil {
			b.Fatal(err)
		}
		replay += time.Since(t0)
		if full.Version() != events || restored.Version() != events {
			b.Fatalf("versions %d and %d, want %d", full.Version(), restored.Version(), events)
		}

		t0 = time.Now()
		uid, _ := gocql.ParseUUID(id)
		iter := s.Query(`SELECT sequence, payload FROM event_store WHERE aggregate_id = ?`, uid).WithContext(ctx).PageSize(1000).Iter()
		var seq int64
		var payload []byte
		n := 0
		for iter.Scan(&seq, &payload) {
			n++
		}
		if err := iter.Close(); err != nil || n != events {
			b.Fatalf("raw read: %d rows, %v", n, err)
		}
		raw += time.Since(t0)

		// The same partition read raw with the columns a replay needs (the envelope's fields and
		// the stream's static head, the store's own query, same page size), into typed values.
		t0 = time.Now()
		iter = s.Query(`SELECT aggregate_type, version, commands, sequence, event_id, event_type, schema_version, payload,
 causation_id, correlation_id, user_id, occurred_at, metadata, traceparent, tracestate FROM event_store WHERE aggregate_id = ?`, uid).
			WithContext(ctx).PageSize(500).Iter()
		var (
			aggType, evType, cause, corr, user, tp, ts string
			version                                    int64
			commands, meta                             map[string]string
			evID                                       gocql.UUID
			schema                                     int
			at                                         time.Time
		)
		n = 0
		for iter.Scan(&aggType, &version, &commands, &seq, &evID, &evType, &schema, &payload, &cause, &corr, &user, &at, &meta, &tp, &ts) {
			n++
		}
		if err := iter.Close(); err != nil || n != events {
			b.Fatalf("raw read of the replay's columns: %d rows, %v", n, err)
		}
		rawAll += time.Since(t0)
	}
	b.StopTimer()
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(per(snap), "snapshot_ms")
	b.ReportMetric(per(replay), "replay_ms")
	b.ReportMetric(per(raw), "raw_read_ms")
	b.ReportMetric(float64(replay)/float64(snap), "snapshot_speedup_x")
	b.ReportMetric(float64(raw)/float64(replay), "replay/raw")
	b.ReportMetric(per(rawAll), "raw_read_all_columns_ms")
	b.ReportMetric(float64(rawAll)/float64(replay), "replay/raw_all_columns")
	b.ReportMetric(0, "ns/op")
}
