package command_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqlfault"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// TestUnknownOutcomeThenRetryGetsFirstOutcome is loss path 1 of issue 10 seen by a client: the
// command's conditional batch is held in a TCP proxy (cqlfault) until the service has timed out
// and read nothing at SERIAL, then commits. The client must get Unavailable (not AlreadyExists),
// and a retry with the same command_id the first outcome: the events that did commit.
func TestUnknownOutcomeThenRetryGetsFirstOutcome(t *testing.T) {
	e := env(t)
	ctx := ctxT(t)
	proxy := cqlfault.Start(t)
	ps := proxy.Session(t, e.keyspace, time.Second)
	s := startServer(t, serverOptions{Session: ps})

	customer := registerCustomer(t, defaultServer(t)) // outside the proxy: only the order's batch is held
	id, cmdID := ids.New(), ids.New()
	req := &ordersv1.CreateOrderRequest{OrderId: id, CustomerId: customer, Items: items(2), CommandId: cmdID}
	held, release := proxy.HoldNextBatch()
	_, err := s.oc.CreateOrder(ctx, req)
	select {
	case <-held:
	default:
		t.Fatalf("no batch was held (CreateOrder returned %v): the fault was not injected", err)
	}
	release()
	wantCode(t, err, codes.Unavailable)

	// The held batch commits after all.
	var stored []string
	waitFor(t, func() bool {
		stored = loadEventsQuiet(ctx, e.store, id)
		return len(stored) == 1
	})

	// The retry, through the same service: the first outcome, nothing appended.
	again, err := s.oc.CreateOrder(ctx, req)
	if err != nil || again.GetVersion() != 1 || !slices.Equal(again.GetEventIds(), stored) {
		t.Fatalf("retry with the same command id: %v %v, want version 1 and the committed events %v", again, err, stored)
	}
	if third, err := s.oc.CreateOrder(ctx, req); err != nil || !proto.Equal(again, third) {
		t.Fatalf("second retry: %v %v, want %v", third, err, again)
	}

	// Recovery (the relay's job) finds the intent the service left and writes the outbox row.
	stats, err := e.store.RecoverIntents(context.WithoutCancel(ctx), 0)
	if err != nil || stats.Committed < 1 {
		t.Fatalf("recovery: %+v %v, want the left intent committed", stats, err)
	}
	var outboxEvent string
	if err := e.session.Query(`SELECT event_id FROM outbox_messages WHERE aggregate_id = ? ALLOW FILTERING`, id).
		WithContext(ctx).Scan(&outboxEvent); err != nil || outboxEvent != stored[0] {
		t.Fatalf("outbox row of the committed event: %q %v, want %s", outboxEvent, err, stored[0])
	}
}

// loadEventsQuiet returns the ids of the aggregate's stored events (none on error).
func loadEventsQuiet(ctx context.Context, st *cql.EventStore, id string) []string {
	envs, err := st.LoadRaw(ctx, id, 1, 100)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range envs {
		out = append(out, e.EventID)
	}
	return out
}
