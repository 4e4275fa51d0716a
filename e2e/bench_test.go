package e2e_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// benchPoll is how often the benchmark asks the query service whether the order is visible.
const benchPoll = 2 * time.Millisecond

// BenchmarkCommandToQuery measures, per iteration, one CreateOrder through the command service
// and the time from its acknowledgement until the order is visible through the query service's
// GetOrder without min_version: the path command → event store → outbox → cdc-relay → Kafka →
// projector → read model. (The query service itself waits for an order the event store knows but
// the read model does not hold yet, so one call usually suffices; the benchmark asks again every
// benchPoll while the answer is NOT_FOUND or an older version.) It reports the percentiles of that
// latency (ms), of the command itself, and the calls per order; it never fails on time.
//
//	make bench-e2e    (go test -run '^$' -bench BenchmarkCommandToQuery -benchtime 200x ./e2e/...)
func BenchmarkCommandToQuery(b *testing.B) {
	s := getSystem(b)
	ctx := context.Background()
	customer := ids.New()
	cctx, cancel, _ := withCorr(ctx)
	_, err := s.customers.RegisterCustomer(cctx, &ordersv1.RegisterCustomerRequest{
		CustomerId: customer, Email: "bench-" + randomHex(4) + "@example.com", FirstName: "Bench", LastName: "Mark",
	})
	cancel()
	if err != nil {
		b.Fatalf("RegisterCustomer: %v", err)
	}

	visible := make([]time.Duration, 0, b.N)
	acked := make([]time.Duration, 0, b.N)
	polls := 0
	b.ResetTimer()
	for i := range b.N {
		id := ids.New()
		cctx, cancel, _ := withCorr(ctx)
		start := time.Now()
		_, err := s.orders.CreateOrder(cctx, &ordersv1.CreateOrderRequest{OrderId: id, CustomerId: customer, Items: items(i)})
		cancel()
		if err != nil {
			b.Fatalf("CreateOrder %d: %v", i, err)
		}
		ack := time.Now()
		acked = append(acked, ack.Sub(start))
		deadline := ack.Add(convergeTimeout)
		for {
			polls++
			qctx, cancel := context.WithTimeout(ctx, callTimeout)
			r, err := s.query.GetOrder(qctx, &ordersv1.GetOrderRequest{OrderId: id})
			cancel()
			if err == nil && r.GetOrder().GetVersion() >= 1 {
				visible = append(visible, time.Since(ack))
				break
			}
			if err != nil && status.Code(err) != codes.NotFound {
				b.Fatalf("GetOrder %s: %v", id, err)
			}
			if time.Now().After(deadline) {
				b.Fatalf("order %s not visible %s after CreateOrder was acknowledged", id, convergeTimeout)
			}
			time.Sleep(benchPoll)
		}
	}
	b.StopTimer()

	for _, m := range []struct {
		name string
		d    []time.Duration
	}{{"visible", visible}, {"cmd", acked}} {
		slices.Sort(m.d)
		b.ReportMetric(ms(percentile(m.d, 0.50)), m.name+"-p50-ms")
		b.ReportMetric(ms(percentile(m.d, 0.99)), m.name+"-p99-ms")
		if m.name == "visible" {
			b.ReportMetric(ms(percentile(m.d, 0.90)), m.name+"-p90-ms")
			b.ReportMetric(ms(m.d[len(m.d)-1]), m.name+"-max-ms")
		}
	}
	b.ReportMetric(float64(polls)/float64(b.N), "polls/op")
	if testing.Verbose() {
		fmt.Printf("BenchmarkCommandToQuery N=%d: visible p50 %v p99 %v; command p50 %v p99 %v\n", b.N,
			percentile(visible, 0.5), percentile(visible, 0.99), percentile(acked, 0.5), percentile(acked, 0.99))
	}
}

// percentile returns the q-quantile of sorted d (nearest rank).
func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(q*float64(len(d))+0.5) - 1
	return d[min(max(i, 0), len(d)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
