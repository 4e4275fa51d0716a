package command_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/testinfra"
)

// benchClients is the number of concurrent clients, each on its own aggregate
// (ORDERSYS_BENCH_CLIENTS, default 16).
func benchClients() int {
	if n, err := strconv.Atoi(os.Getenv("ORDERSYS_BENCH_CLIENTS")); err == nil && n > 0 {
		return n
	}
	return 16
}

// rawLWTPerSecond is the throughput the raw_lwt_batch sub-benchmark measured, for the ratio
// the grpc sub-benchmark reports.
var rawLWTPerSecond atomic.Value

// BenchmarkCommands measures, against the local Cassandra and with benchClients concurrent
// clients on distinct aggregates:
//
//   - raw_lwt_batch: a bare conditional batch like the event store's commit (one event row and
//     `UPDATE … SET version IF version = N` on the aggregate's partition), straight through
//     gocql: the floor set by Cassandra's Paxos;
//   - grpc_update_order_items: UpdateOrderItems commands (with command ids) through the real
//     gRPC server: decide (on the cached order, without a read, as a service does once it
//     holds an aggregate), the store's whole append protocol (intent, conditional batch, outbox
//     rows, intent deleted), metrics and tracing;
//   - grpc_create_order: CreateOrder commands (with command ids) for new orders, each client for
//     a customer of its own the service holds: each loads an order it has never seen (snapshot
//     read and events read side by side: both find nothing) before the append;
//   - grpc_change_email/pii=off and pii=on: ChangeEmail commands, whose events carry personal
//     data, with the personal fields stored in clear and sealed with the customer's data key
//     (docs/privacy.md): the cost of the encryption side by side (the data key is cached after
//     the customer's first command, as in the service).
//
// Each reports p50_ms, p99_ms and its throughput (batches/s, cmds/s); the second also reports raw_lwt/s and
// overhead_x, the raw batch throughput divided by the command throughput. Each also reports what an
// operation cost: go_cpu_ms/op (this process: clients and service), cass_cpu_ms/op (the local
// Cassandra process) and cass_req/op (requests the node counted); see testinfra.CostMeter. Run:
//
//	go test -run '^$' -bench Commands -benchtime 2000x ./
func BenchmarkCommands(b *testing.B) {
	e := env(b)
	clients := benchClients()

	b.Run("raw_lwt_batch", func(b *testing.B) {
		ctx := context.Background()
		aggs := make([]gocql.UUID, clients)
		versions := make([]int64, clients)
		for i := range aggs {
			aggs[i] = gocql.TimeUUID()
		}
		payload := make([]byte, 120)
		op := func(c int) error {
			v := versions[c]
			batch := e.session.Batch(gocql.LoggedBatch).WithContext(ctx)
			row := []any{aggs[c], v + 1, gocql.TimeUUID(), "BenchEvent", int32(1), payload, "cause", "corr", "user", time.Now(), map[string]string{"k": "v"}, "", ""}
			if v == 0 {
				batch.Query(`INSERT INTO event_store (aggregate_id, sequence, event_id, event_type, schema_version, payload,
					causation_id, correlation_id, user_id, occurred_at, metadata, traceparent, tracestate, aggregate_type, version)
					VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) IF NOT EXISTS`, append(row, "Bench", v+1)...)
			} else {
				batch.Query(`INSERT INTO event_store (aggregate_id, sequence, event_id, event_type, schema_version, payload,
					causation_id, correlation_id, user_id, occurred_at, metadata, traceparent, tracestate) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`, row...)
				batch.Query(`UPDATE event_store SET version = ? WHERE aggregate_id = ? IF version = ?`, v+1, aggs[c], v)
			}
			applied, iter, err := e.session.MapExecuteBatchCAS(batch, map[string]any{})
			if iter != nil {
				_ = iter.Close()
			}
			if err != nil {
				return err
			}
			if !applied {
				b.Errorf("raw batch on %s at version %d not applied", aggs[c], v)
			}
			versions[c] = v + 1
			return nil
		}
		for c := range clients { // create the aggregates outside the measurement
			if err := op(c); err != nil {
				b.Fatal(err)
			}
		}
		perSecond := runConcurrently(b, clients, "batches/s", op)
		rawLWTPerSecond.Store(perSecond)
	})

	b.Run("grpc_update_order_items", func(b *testing.B) {
		s := startServer(b, serverOptions{SnapshotEvery: 100, MaxRetries: 5})
		ctx := context.Background()
		orderIDs := make([]string, clients)
		for i := range orderIDs {
			orderIDs[i] = createOrder(b, s, ctx)
		}
		n := make([]int, clients)
		op := func(c int) error {
			n[c]++
			_, err := s.oc.UpdateOrderItems(ctx, &ordersv1.UpdateOrderItemsRequest{
				OrderId:   orderIDs[c],
				Items:     []*ordersv1.OrderItem{{ProductId: ids.New(), Quantity: int32(n[c]%9 + 1), UnitPriceCents: 1999}},
				Reason:    "bench",
				CommandId: ids.New(),
			})
			return err
		}
		perSecond := runConcurrently(b, clients, "cmds/s", op)
		if raw, ok := rawLWTPerSecond.Load().(float64); ok && perSecond > 0 {
			b.ReportMetric(raw, "raw_lwt/s")
			b.ReportMetric(raw/perSecond, "overhead_x")
		}
	})

	b.Run("grpc_create_order", func(b *testing.B) {
		s := startServer(b, serverOptions{SnapshotEvery: 100, MaxRetries: 5})
		ctx := context.Background()
		customerIDs := make([]string, clients)
		for i := range customerIDs {
			customerIDs[i] = registerCustomer(b, s) // one per client: no client waits on another's customer
		}
		op := func(c int) error {
			_, err := s.oc.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: ids.New(), CustomerId: customerIDs[c],
				Items: []*ordersv1.OrderItem{{ProductId: ids.New(), Quantity: 1, UnitPriceCents: 1999}}, CommandId: ids.New()})
			return err
		}
		perSecond := runConcurrently(b, clients, "cmds/s", op)
		if raw, ok := rawLWTPerSecond.Load().(float64); ok && perSecond > 0 {
			b.ReportMetric(raw, "raw_lwt/s")
			b.ReportMetric(raw/perSecond, "overhead_x")
		}
	})

	for _, mode := range []struct {
		name  string
		clear bool
	}{{"pii=off", true}, {"pii=on", false}} {
		b.Run("grpc_change_email/"+mode.name, func(b *testing.B) {
			s := startServer(b, serverOptions{SnapshotEvery: 100, MaxRetries: 5, ClearPII: mode.clear})
			ctx := context.Background()
			customers := make([]string, clients)
			for i := range customers {
				customers[i] = registerCustomer(b, s)
			}
			n := make([]int, clients)
			op := func(c int) error {
				n[c]++
				_, err := s.cc.ChangeEmail(ctx, &ordersv1.ChangeEmailRequest{
					CustomerId: customers[c], Email: "bench-" + strconv.Itoa(n[c]) + "@example.com", CommandId: ids.New()})
				return err
			}
			runConcurrently(b, clients, "cmds/s", op)
		})
	}
}

// runConcurrently runs b.N operations spread over clients goroutines (op(c) is only ever called
// from goroutine c), reports p50_ms, p99_ms and the throughput in unit, and returns the
// throughput per second.
func runConcurrently(b *testing.B, clients int, unit string, op func(c int) error) float64 {
	b.Helper()
	var (
		next      atomic.Int64
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, b.N)
		wg        sync.WaitGroup
		failures  atomic.Int64
		firstErr  atomic.Value
	)
	b.ResetTimer()
	cost := testinfra.StartCost(shared.session)
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, b.N/clients+1)
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if err := op(c); err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	cost.Report(b, b.N, "")
	if f := failures.Load(); f > 0 {
		b.Fatalf("%d of %d operations failed, first: %v", f, b.N, firstErr.Load())
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	perSecond := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
	b.ReportMetric(perSecond, unit)
	return perSecond
}
