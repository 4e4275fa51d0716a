package app_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
)

// ---------------------------------------------------------------------------------------------
// Producing events through the real append protocol

var registry = codec.NewRegistry()

// appendOrder appends events from+1..from+n to an order (sequence 1 is OrderCreated) in
// commands of one or two events, and returns when each command was issued, by sequence.
func (e *env) appendOrder(ctx context.Context, agg string, from, n int) (map[int64]time.Time, error) {
	issued := map[int64]time.Time{}
	seq := int64(from)
	for seq < int64(from+n) {
		k := 1 + int(seq%2)
		if int(seq)+k > from+n {
			k = from + n - int(seq)
		}
		req := es.AppendRequest{AggregateID: agg, AggregateType: "Order", ExpectedVersion: seq, CommandID: uuid.NewString(), CommandFingerprint: "fp"}
		start := time.Now()
		ctxSpan := "00-" + strings.ReplaceAll(uuid.NewString(), "-", "") + "-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16] + "-01"
		for i := 0; i < k; i++ {
			s := seq + int64(i) + 1
			var ev es.Event = order.OrderShipped{TrackingNumber: fmt.Sprintf("T%d", s), Carrier: "ups"}
			if s == 1 {
				ev = order.OrderCreated{OrderID: agg, CustomerID: uuid.NewString(),
					Items: []order.Item{{ProductID: uuid.NewString(), Quantity: 1, UnitPriceCents: 500}}, TotalCents: 500}
			}
			env := es.Envelope{EventID: uuid.NewString(), AggregateID: agg, AggregateType: "Order", Sequence: s, Event: ev,
				CausationID: req.CommandID, CorrelationID: req.CommandID, OccurredAt: time.Now().UTC(), TraceParent: ctxSpan}
			if err := registry.EncodeEnvelope(&env); err != nil {
				return issued, err
			}
			req.Events = append(req.Events, env)
			issued[s] = start
		}
		if _, err := e.store.Append(ctx, req); err != nil {
			return issued, fmt.Errorf("append %s@%d: %w", agg, seq, err)
		}
		seq += int64(k)
	}
	return issued, nil
}

// produce appends events to aggs concurrently, each in commands of one or two events, spread
// over the given duration, and returns the expected last sequence per aggregate.
func (e *env) produce(ctx context.Context, aggs, perAgg int, over time.Duration) (map[string]int64, map[string]map[int64]time.Time, error) {
	want := map[string]int64{}
	issued := map[string]map[int64]time.Time{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, aggs)
	pause := over / time.Duration(max(perAgg, 1))
	for i := 0; i < aggs; i++ {
		agg := uuid.NewString()
		want[agg] = int64(perAgg)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for from := 0; from < perAgg; {
				n := min(2, perAgg-from)
				got, err := e.appendOrder(ctx, agg, from, n)
				mu.Lock()
				if issued[agg] == nil {
					issued[agg] = map[int64]time.Time{}
				}
				for k, v := range got {
					issued[agg][k] = v
				}
				mu.Unlock()
				if err != nil {
					errs <- err
					return
				}
				from += n
				time.Sleep(pause)
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return want, issued, errors.Join(all...)
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p)
	return s[i]
}
