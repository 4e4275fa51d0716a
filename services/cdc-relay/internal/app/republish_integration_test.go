package app_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/ordersys/ordersys/pkg/testinfra"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/app"
)

// TestRepublishFromTheEventStore publishes every event of the event store again into a fresh
// topic, walking the token ring a few aggregates a page: stopped after two pages, the same job
// resumes after the last page it finished, and the topic ends with every event of every
// aggregate, first occurrences in sequence order, on the partition of its key. Then one
// aggregate alone, through the relay's admin gRPC service, streaming its progress.
func TestRepublishFromTheEventStore(t *testing.T) {
	testinfra.Require(t)
	e := newEnv(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	want := map[string]int64{}
	for range 24 {
		id := uuid.NewString()
		if _, err := e.appendOrder(ctx, id, 0, 3); err != nil {
			t.Fatal(err)
		}
		want[id] = 3
	}
	target := testinfra.TopicName(t, "republish")
	c := collect(t, e.kafka, target)
	cfg := e.config(nil)
	admin, closeAdmin, err := app.NewAdmin(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAdmin()
	events := cql.NewEventStore(e.session, codec.NewRegistry(), cql.Options{})

	// First run: stopped once two pages of 5 aggregates are done.
	stopped := errors.New("stopped by the test")
	rctx, stop := context.WithCancelCause(ctx)
	var first []app.RepublishProgress
	err = admin.Republish(rctx, events, app.RepublishRequest{Job: "j1", Topic: target, Rate: 10000, PageSize: 5}, func(p app.RepublishProgress) {
		first = append(first, p)
		if len(first) == 2 {
			stop(stopped)
		}
	})
	if !errors.Is(context.Cause(rctx), stopped) || len(first) != 2 || first[1].Aggregates != 10 || first[1].Fraction <= 0 {
		t.Fatalf("first run: %v, progress %+v: want stopped after two pages of 5", err, first)
	}
	// The same job again: it resumes after those ten aggregates.
	var second []app.RepublishProgress
	if err := admin.Republish(ctx, events, app.RepublishRequest{Job: "j1", Topic: target, Rate: 10000, PageSize: 5}, func(p app.RepublishProgress) {
		second = append(second, p)
	}); err != nil {
		t.Fatal(err)
	}
	last := second[len(second)-1]
	if !last.Done || last.Aggregates > int64(len(want))-10 || last.Events != last.Aggregates*3 {
		t.Fatalf("resumed run ended with %+v: want done, at most %d aggregates (it resumes after ten)", last, len(want)-10)
	}
	c.waitDistinct(t, len(want)*3, time.Minute)
	verify(t, c.records(), want, 3)

	// One aggregate through the admin service, as `ordersysctl republish` calls it.
	r := e.startInProcess("r1", nil)
	conn, err := grpcx.ClientConn(r.grpcAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var one string
	for id := range want {
		one = id
		break
	}
	stream, err := ordersv1.NewRelayAdminServiceClient(conn).RepublishEvents(ctx, &ordersv1.RepublishEventsRequest{Topic: target, AggregateIds: []string{one}})
	if err != nil {
		t.Fatal(err)
	}
	var got []*ordersv1.RepublishEventsResponse
	for {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	if len(got) != 1 || !got[0].GetDone() || got[0].GetEvents() != 3 || got[0].GetAggregates() != 1 {
		t.Fatalf("RepublishEvents of one aggregate: %v, want one final report of 3 events", got)
	}

	// An aggregate longer than one publish call (505 events: sent alone, a chunk of 500 at a
	// time) with short ones around it (packed together into calls): every event once, each
	// aggregate in sequence order.
	long := uuid.NewString()
	if _, err := e.appendOrder(ctx, long, 0, 505); err != nil {
		t.Fatal(err)
	}
	mixed := map[string]int64{long: 505}
	for id := range want {
		mixed[id] = 3
	}
	target2 := testinfra.TopicName(t, "republish-long")
	c2 := collect(t, e.kafka, target2)
	var final app.RepublishProgress
	if err := admin.Republish(ctx, events, app.RepublishRequest{Job: "j2", Topic: target2, Rate: 100000}, func(p app.RepublishProgress) {
		final = p
	}); err != nil {
		t.Fatal(err)
	}
	if !final.Done || final.Aggregates != int64(len(mixed)) || final.Events != 505+3*int64(len(want)) {
		t.Fatalf("republish of a long aggregate among short ones ended with %+v, want %d aggregates", final, len(mixed))
	}
	c2.waitDistinct(t, 505+3*len(want), time.Minute)
	verify(t, c2.records(), mixed, 3)
}
