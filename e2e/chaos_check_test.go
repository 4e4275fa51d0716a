package e2e_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/testinfra"
)

// chaosConverge bounds how long, after the faults, the topics and read models may take to
// catch up (a projector killed last rejoins its group after the session timeout).
const chaosConverge = 3 * time.Minute

// checkChaos compares what the clients were told with the event store, the topics and the
// read models, and prints the counts.
func checkChaos(t *testing.T, s *system, led *ledger) {
	for _, b := range led.bad {
		t.Errorf("contradicting answer: %s", b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), chaosConverge+time.Minute)
	defer cancel()
	session, err := testinfra.Cluster(s.cqlHosts(), s.keyspace).CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	store := cql.NewEventStore(session, codec.NewRegistry(), cql.Options{})

	// 1. Every acknowledged event is in the event store, at its sequence.
	stored := map[string][]string{} // aggregate → event ids in the store, by sequence-1
	extra := 0
	for agg, acked := range led.events {
		head, err := store.Head(ctx, agg)
		if err != nil {
			t.Fatalf("head of %s: %v", agg, err)
		}
		evs, err := store.LoadRaw(ctx, agg, 1, head.Version)
		if err != nil {
			t.Fatalf("events of %s: %v", agg, err)
		}
		for _, e := range evs {
			stored[agg] = append(stored[agg], e.EventID)
		}
		if len(stored[agg]) < len(acked) {
			t.Errorf("%s: %d events acknowledged, %d in the event store", agg, len(acked), len(stored[agg]))
			continue
		}
		for i, id := range acked {
			if stored[agg][i] != id {
				t.Errorf("%s sequence %d: acknowledged event %s, the store holds %s", agg, i+1, id, stored[agg][i])
			}
		}
		extra += len(stored[agg]) - len(acked)
	}

	// 2. Every stored event reaches its topic: none missing, no phantom, first deliveries in
	// sequence order per aggregate.
	var dups int
	err = eventually(chaosConverge, time.Second, func() error {
		var err error
		dups, err = topicsMatch(ctx, s, stored)
		return err
	})
	if err != nil {
		t.Errorf("topics: %v", err)
	}

	// 3. Every read model equals the state replayed from the store; each order is in the one
	// status list of its status.
	statusOf := map[string]ordersv1.OrderStatus{}
	for _, id := range led.orders {
		v := int64(len(stored[id]))
		var got *ordersv1.GetOrderResponse
		err := eventually(chaosConverge, pollEvery, func() error {
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			defer cancel()
			var err error
			got, err = s.query.GetOrder(cctx, &ordersv1.GetOrderRequest{OrderId: id, MinVersion: &v})
			return err
		})
		if err != nil {
			t.Errorf("GetOrder %s at version %d: %v", id, v, err)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		at, err := s.query.GetOrderAt(cctx, &ordersv1.GetOrderAtRequest{OrderId: id, Point: &ordersv1.GetOrderAtRequest_Version{Version: v}})
		cancel()
		if err != nil {
			t.Errorf("GetOrderAt %s version %d: %v", id, v, err)
			continue
		}
		if got.GetOrder().GetVersion() != v {
			t.Errorf("order %s: read model at version %d, store at %d", id, got.GetOrder().GetVersion(), v)
		}
		if err := sameState(got.GetOrder(), at.GetOrder()); err != nil {
			t.Errorf("order %s: read model and replay differ: %v", id, err)
		}
		statusOf[id] = at.GetOrder().GetStatus()
	}
	lists := map[string][]ordersv1.OrderStatus{}
	for st := ordersv1.OrderStatus_ORDER_STATUS_CREATED; st <= ordersv1.OrderStatus_ORDER_STATUS_CANCELLED; st++ {
		got, err := listAll(ctx, func(ctx context.Context, token string) ([]*ordersv1.Order, string, error) {
			r, err := s.query.ListOrdersByStatus(ctx, &ordersv1.ListOrdersByStatusRequest{Status: st, PageSize: 200, PageToken: token})
			return r.GetOrders(), r.GetNextPageToken(), err
		})
		if err != nil {
			t.Errorf("ListOrdersByStatus %s: %v", st, err)
		}
		for _, o := range got {
			lists[o.GetOrderId()] = append(lists[o.GetOrderId()], st)
		}
	}
	for id, st := range statusOf {
		if l := lists[id]; len(l) != 1 || l[0] != st {
			t.Errorf("order %s (%s) is in the status lists %v", id, st, l)
		}
	}
	for id, l := range lists {
		if _, ok := statusOf[id]; !ok {
			t.Errorf("order %s, never acknowledged here, is in the status lists %v", id, l)
		}
	}
	// 4. No write is ahead of the clock: ScyllaDB refuses USING TIMESTAMP more than three days
	// ahead (restrict_future_timestamp), which Cassandra here does not check.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute) // a full scan of each table
	defer cancel()
	if err := writesAheadOfTheClock(wctx, session, s.keyspace); err != nil {
		t.Error(err)
	}
	events := 0
	for _, ids := range stored {
		events += len(ids)
	}
	t.Logf("checked %d aggregates (%d orders), %d events in the store (%d beyond the acknowledged: commands given up whose outcome was unknown), %d duplicate deliveries on the topics",
		len(stored), len(led.orders), events, extra, dups)
}

// topicsMatch reads both topics and compares them with the store; it returns the number of
// duplicate deliveries.
func topicsMatch(ctx context.Context, s *system, stored map[string][]string) (int, error) {
	seen := map[string]map[int64]string{} // aggregate → sequence → event id
	last := map[string]int64{}            // aggregate → last first-delivered sequence
	dups := 0
	var problems []string
	for _, topic := range s.topics {
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		msgs, err := okafka.ReadTopic(rctx, okafka.Cluster{Brokers: s.brokers}, topic)
		cancel()
		if err != nil {
			return 0, err
		}
		for _, m := range msgs {
			h, err := okafka.ParseHeaders(m.Headers)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s offset %d: %v", topic, m.Offset, err))
				continue
			}
			agg := string(m.Key)
			want, tracked := stored[agg]
			if !tracked {
				continue // an aggregate whose first command was given up: nobody knows what it holds
			}
			if h.Sequence < 1 || h.Sequence > int64(len(want)) || want[h.Sequence-1] != h.EventID {
				problems = append(problems, fmt.Sprintf("phantom: %s sequence %d event %s is not in the store", agg, h.Sequence, h.EventID))
				continue
			}
			if seen[agg] == nil {
				seen[agg] = map[int64]string{}
			}
			if _, dup := seen[agg][h.Sequence]; dup {
				dups++
				continue
			}
			seen[agg][h.Sequence] = h.EventID
			if h.Sequence != last[agg]+1 {
				problems = append(problems, fmt.Sprintf("%s: sequence %d first delivered after %d", agg, h.Sequence, last[agg]))
			}
			last[agg] = max(last[agg], h.Sequence)
		}
	}
	missing := 0
	for agg, ids := range stored {
		missing += len(ids) - len(seen[agg])
	}
	if missing > 0 {
		problems = append(problems, fmt.Sprintf("%d stored events not on the topics yet", missing))
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		if len(problems) > 10 {
			problems = append(problems[:10], fmt.Sprintf("and %d more", len(problems)-10))
		}
		return dups, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return dups, nil
}
