package command_test

import (
	"context"
	"math/rand/v2"
	"reflect"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// Shape of the concurrency test: clients × commands each, spread over orders.
const (
	concClients  = 32
	concCommands = 50
	concOrders   = 4
)

// outcome is the final result of one logical command, as its client saw it.
type outcome struct {
	orderID   string
	commandID string
	eventIDs  []string // acknowledged: the response's event ids
	err       error    // not acknowledged: the final error
}

// TestConcurrentCommands runs two replicas of the service on the same store and concClients
// clients, each sending concCommands UpdateOrderItems commands (each with its own command id) to
// one of concOrders orders through one of the replicas, first without
// expected_version (the server retries lost races), then with it (the clients retry after
// ABORTED). Then, per order: sequences are dense from 1 with no duplicate, every acknowledged
// command's events are there (caused by it), no failed command left an event, the log holds
// nothing else, and the state loaded by the service equals the replay of the log.
func TestConcurrentCommands(t *testing.T) {
	env(t) // requires Cassandra
	modes := []struct {
		name     string
		replicas int
		retries  int
		expected bool
	}{
		// Races between the two replicas are lost in the store's conditional append; the
		// servers decide again.
		{"server retries without expected_version", 2, 5, false},
		// The clients' versions go stale while the other clients' commands pass: ABORTED, and
		// the clients retry. (One replica: within one, commands on an aggregate queue.)
		{"clients retry with expected_version", 1, 0, true},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			var replicas []*server
			for range mode.replicas {
				replicas = append(replicas, startServer(t, serverOptions{SnapshotEvery: 10, MaxRetries: mode.retries}))
			}
			s := replicas[0]
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			orderIDs := make([]string, concOrders)
			for i := range orderIDs {
				orderIDs[i] = createOrder(t, s, ctx)
			}

			start := time.Now()
			results := make(chan outcome, concClients*concCommands)
			var wg sync.WaitGroup
			for c := range concClients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id := orderIDs[c%concOrders]
					replica := replicas[(c/concOrders)%len(replicas)] // every order through both
					for range concCommands {
						results <- sendUpdate(ctx, replica, id, mode.expected)
					}
				}()
			}
			wg.Wait()
			close(results)
			elapsed := time.Since(start)

			byOrder := map[string][]outcome{}
			acked, failed := 0, map[codes.Code]int{}
			for r := range results {
				byOrder[r.orderID] = append(byOrder[r.orderID], r)
				if r.err == nil {
					acked++
				} else {
					failed[status.Code(r.err)]++
				}
			}
			var retries, conflicts float64
			for _, r := range replicas {
				retries += metricSum(t, r, "ordersys_command_retries_total")
				conflicts += metricSum(t, r, "ordersys_command_conflicts_total")
			}
			t.Logf("%d commands in %v: %d acknowledged, failed by code %v; server side: %v lost races, %v retries",
				concClients*concCommands, elapsed.Round(time.Millisecond), acked, failed, conflicts, retries)
			if acked == 0 {
				t.Fatal("no command acknowledged")
			}
			for code := range failed {
				if code != codes.Aborted {
					t.Errorf("unexpected failures with %v", code)
				}
			}
			for _, id := range orderIDs {
				verifyLog(t, s, id, byOrder[id])
			}
		})
	}
}

// actualVersion finds the actual version in the message of an ABORTED status.
var actualVersion = regexp.MustCompile(`actual (\d+)`)

// sendUpdate sends one UpdateOrderItems command until it has a definite outcome: retried with the
// same command id after an unknown outcome (UNAVAILABLE, DEADLINE_EXCEEDED), and, with
// expected_version, after ABORTED with the version read again (at most 200 attempts).
func sendUpdate(ctx context.Context, s *server, id string, withExpected bool) outcome {
	req := &ordersv1.UpdateOrderItemsRequest{
		OrderId:   id,
		Items:     []*ordersv1.OrderItem{{ProductId: ids.New(), Quantity: rand.Int32N(9) + 1, UnitPriceCents: rand.Int64N(10000)}},
		Reason:    "concurrency",
		CommandId: ids.New(),
	}
	var err error
	known := int64(-1) // the version the last ABORTED reported
	for range 200 {
		if withExpected {
			v := known
			if v < 0 {
				head, herr := s.store.Head(ctx, id) // the client's view of the current version
				if herr != nil {
					err = herr
					continue
				}
				v = head.Version
			}
			req.ExpectedVersion, known = &v, -1
		}
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		var resp *ordersv1.UpdateOrderItemsResponse
		resp, err = s.oc.UpdateOrderItems(cctx, req)
		cancel()
		switch status.Code(err) {
		case codes.OK:
			return outcome{orderID: id, commandID: req.CommandId, eventIDs: resp.GetEventIds()}
		case codes.Unavailable, codes.DeadlineExceeded:
			continue // unknown outcome: the same command id makes the retry safe
		case codes.Aborted:
			if withExpected {
				if m := actualVersion.FindStringSubmatch(status.Convert(err).Message()); m != nil {
					known, _ = strconv.ParseInt(m[1], 10, 64)
				}
				continue
			}
		}
		break
	}
	return outcome{orderID: id, commandID: req.CommandId, err: err}
}

// verifyLog checks one order's event log against what its clients saw.
func verifyLog(t *testing.T, s *server, id string, outcomes []outcome) {
	t.Helper()
	evs := loadEvents(t, s.store, id)
	byEventID := map[string]es.Envelope{}
	byCause := map[string]int{}
	for i, e := range evs {
		if e.Sequence != int64(i+1) {
			t.Fatalf("order %s: event %d has sequence %d", id, i, e.Sequence)
		}
		if _, dup := byEventID[e.EventID]; dup {
			t.Fatalf("order %s: event id %s twice", id, e.EventID)
		}
		byEventID[e.EventID] = e
		byCause[e.CausationID]++
	}
	acked := 0
	for _, o := range outcomes {
		if o.err != nil {
			if n := byCause[o.commandID]; n != 0 {
				t.Errorf("order %s: failed command %s (%v) left %d events", id, o.commandID, o.err, n)
			}
			continue
		}
		acked++
		if len(o.eventIDs) != 1 {
			t.Errorf("order %s: command %s acknowledged with %d event ids", id, o.commandID, len(o.eventIDs))
			continue
		}
		e, ok := byEventID[o.eventIDs[0]]
		if !ok || e.CausationID != o.commandID || e.EventType != order.EventOrderItemsUpdated {
			t.Errorf("order %s: acknowledged event %s of command %s missing or not its own: %+v", id, o.eventIDs[0], o.commandID, e)
		}
		if byCause[o.commandID] != 1 {
			t.Errorf("order %s: command %s caused %d events", id, o.commandID, byCause[o.commandID])
		}
	}
	if len(evs) != 1+acked {
		t.Errorf("order %s: %d events, want the creation and %d acknowledged updates", id, len(evs), acked)
	}
	loaded, err := s.orders.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	replayed := order.New(id)
	if err := es.Replay(replayed, evs); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(loaded, replayed) {
		t.Errorf("order %s: loaded state differs from the replay\nloaded   %+v\nreplayed %+v", id, loaded, replayed)
	}
}

// metricSum adds up the values of a counter family in the server's registry.
func metricSum(t testing.TB, s *server, name string) float64 {
	t.Helper()
	mfs, err := s.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
