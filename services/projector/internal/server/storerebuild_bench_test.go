package server_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/services/projector/internal/app"
)

// Size of BenchmarkRebuildFromStore's event store: 100 customers (one event each) and 2,000
// orders of 10 events each (created, eight item changes, confirmed): 20,100 events.
const (
	benchCustomers      = 100
	benchOrders         = 2000
	benchUpdatesByOrder = 8
	// benchWorkers is how many aggregates the rebuild and the walk read handle at once (the
	// rebuild's default).
	benchWorkers = 8
)

// benchEach calls fn for every id, workers at a time, and returns the first error.
func benchEach(ids []string, workers int, fn func(id string) error) error {
	next := make(chan string)
	errs := make(chan error, len(ids))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for id := range next {
				errs <- fn(id)
			}
		})
	}
	for _, id := range ids {
		next <- id
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkRebuildFromStore measures, side by side in one run, the events per second rebuilt
// into the orders read models directly from the event store (app.Rebuild with
// SourceEventStore: the token walk, each aggregate's events decoded and projected through the
// handler into a fresh table version, 8 aggregates at a time) against reading the same events
// without projecting them: the same token walk reading each aggregate's rows (LoadRaw, as many
// aggregates at a time as the rebuild), and a raw paged CQL read of the whole event_store table (SELECT of the
// key and payload, 1,000 rows a page, nothing decoded: the floor). One iteration runs all three
// on the 20,100 events; the rebuild's rate is of its walk (from its first to its last progress
// report), its end-to-end time (version allocation, tables, walk, catching up, switch) is
// reported too. Figures, never a pass/fail on time:
//
//	cd services/projector && go test -run '^$' -bench BenchmarkRebuildFromStore -benchtime 2x ./internal/server/
func BenchmarkRebuildFromStore(b *testing.B) {
	e := newEnv(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	total := benchPopulate(ctx, b, e)

	var rebuildWalk, rebuildAll, walkRead, rawScan time.Duration
	b.ResetTimer()
	for i := range b.N {
		var first, last time.Time
		var walked app.RebuildProgress
		t0 := time.Now()
		v, err := app.Rebuild(ctx, e.cfg, e.deps.Deps(), readmodel.ProjectionOrders, app.RebuildOptions{
			Source: app.SourceEventStore, Workers: benchWorkers, Poll: 100 * time.Millisecond, Linger: time.Millisecond,
			Progress: func(p app.RebuildProgress) {
				if p.Phase != app.PhaseWalking {
					return
				}
				if first.IsZero() {
					first = time.Now()
				}
				last, walked = time.Now(), p
			},
		})
		rebuildAll += time.Since(t0)
		rebuildWalk += last.Sub(first)
		if err != nil || v != i+2 || walked.Events != int64(total) || walked.Skipped != 0 {
			b.Fatalf("rebuild: v%d %v, walk %+v: want v%d and %d events", v, err, walked, i+2, total)
		}

		t0 = time.Now()
		var n atomic.Int64
		if err := e.store.WalkAggregates(ctx, "", 100, func(page cql.WalkPage) error {
			return benchEach(page.IDs, benchWorkers, func(id string) error {
				envs, err := e.store.LoadRaw(ctx, id, 1, 1000)
				n.Add(int64(len(envs)))
				return err
			})
		}); err != nil || n.Load() != int64(total) {
			b.Fatalf("walk read: %d events, %v", n.Load(), err)
		}
		walkRead += time.Since(t0)

		t0 = time.Now()
		iter := e.s.Query(`SELECT aggregate_id, sequence, payload FROM event_store`).WithContext(ctx).PageSize(1000).Iter()
		var id []byte
		var seq int64
		var payload []byte
		rows := 0
		for iter.Scan(&id, &seq, &payload) {
			rows++
		}
		if err := iter.Close(); err != nil || rows != total {
			b.Fatalf("raw scan: %d rows, %v", rows, err)
		}
		rawScan += time.Since(t0)
	}
	b.StopTimer()
	rate := func(d time.Duration) float64 { return float64(total) * float64(b.N) / d.Seconds() }
	b.ReportMetric(rate(rebuildWalk), "rebuild_events/s")
	b.ReportMetric(rebuildAll.Seconds()/float64(b.N), "rebuild_total_s")
	b.ReportMetric(rate(walkRead), "walk_read_events/s")
	b.ReportMetric(rate(rawScan), "raw_scan_events/s")
	b.ReportMetric(rate(rebuildWalk)/rate(rawScan), "rebuild/raw")
	b.ReportMetric(0, "ns/op")
}

// benchPopulate appends the benchmark's customers and orders to the event store, 8 appends at
// a time, and returns the number of events.
func benchPopulate(ctx context.Context, b *testing.B, e *env) int {
	b.Helper()
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	store := func(a es.Aggregate, evs []es.Event) error {
		envs := es.NewEnvelopes(a, evs, es.Metadata{CausationID: ids.New(), CorrelationID: "bench"}, at, ids.New)
		for i := range envs {
			if err := e.reg.EncodeEnvelope(&envs[i]); err != nil {
				return err
			}
		}
		_, err := e.store.Append(ctx, es.AppendRequest{AggregateID: a.AggregateID(), AggregateType: a.AggregateType(), Events: envs})
		return err
	}
	customers := make([]string, benchCustomers)
	jobs := make(chan func() error)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error
	for range 8 {
		wg.Go(func() {
			for job := range jobs {
				if err := job(); err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
				}
			}
		})
	}
	for i := range customers {
		c := customer.New(ids.New())
		customers[i] = c.AggregateID()
		jobs <- func() error {
			return store(c, []es.Event{customer.CustomerRegistered{CustomerID: c.AggregateID(),
				Email: customer.Email(fmt.Sprintf("bench%d@example.com", i)), FirstName: "Bench", LastName: fmt.Sprint(i), Tier: customer.TierBronze}})
		}
	}
	for i := range benchOrders {
		o := order.New(ids.New())
		items := func(q int) []order.Item {
			return []order.Item{{ProductID: ids.Probe, Quantity: int32(q + 1), UnitPriceCents: 250}}
		}
		evs := []es.Event{order.OrderCreated{OrderID: o.AggregateID(), CustomerID: customers[i%benchCustomers], Items: items(0), TotalCents: 250}}
		for u := 1; u <= benchUpdatesByOrder; u++ {
			evs = append(evs, order.OrderItemsUpdated{Items: items(u), TotalCents: int64(250 * (u + 1))})
		}
		evs = append(evs, order.OrderConfirmed{})
		jobs <- func() error { return store(o, evs) }
	}
	close(jobs)
	wg.Wait()
	if failed != nil {
		b.Fatal(failed)
	}
	return benchCustomers + benchOrders*(benchUpdatesByOrder+2)
}
