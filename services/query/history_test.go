package query_test

import (
	"encoding/json"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/codec/codectest"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/services/query/internal/app"
)

func TestGetOrderHistory(t *testing.T) {
	srv, e := defaultServer(t)
	id, cust := ids.New(), ids.New()
	t0 := time.Now().Add(-time.Hour)
	envs := appendOrder(t, e.store, id, lifecycle(id, cust, t0)...)

	res, err := srv.oq.GetOrderHistory(ctxT(t), &ordersv1.GetOrderHistoryRequest{OrderId: id})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GetEvents()) != len(envs) {
		t.Fatalf("%d events, want %d", len(res.GetEvents()), len(envs))
	}
	wantTypes := []string{order.EventOrderCreated, order.EventOrderItemsUpdated, order.EventOrderConfirmed, order.EventOrderShipped, order.EventOrderDelivered}
	for i, ev := range res.GetEvents() {
		env := envs[i]
		if ev.GetSequence() != int64(i+1) || ev.GetVersion() != int64(i+1) || ev.GetEventType() != wantTypes[i] ||
			ev.GetEventId() != env.EventID || ev.GetSchemaVersion() < 1 {
			t.Errorf("event %d: %v", i, ev)
		}
		if !ev.GetOccurredAt().AsTime().Equal(env.OccurredAt) {
			t.Errorf("event %d occurred at %v, want %v", i, ev.GetOccurredAt().AsTime(), env.OccurredAt)
		}
		if ev.GetCorrelationId() != env.CorrelationID || ev.GetCausationId() != env.CausationID || ev.GetUserId() != "user-1" {
			t.Errorf("event %d causality: %v", i, ev)
		}
		if ev.GetMetadata()["command"] == "" {
			t.Errorf("event %d lost its metadata: %v", i, ev.GetMetadata())
		}
		var payload map[string]any
		if err := json.Unmarshal([]byte(ev.GetPayloadJson()), &payload); err != nil {
			t.Fatalf("event %d payload %q: %v", i, ev.GetPayloadJson(), err)
		}
		if i == 3 && (payload["tracking_number"] != "TRK-1" || payload["carrier"] != "DHL") {
			t.Errorf("OrderShipped payload %v", payload)
		}
		if i == 0 && payload["customer_id"] != cust {
			t.Errorf("OrderCreated payload %v", payload)
		}
	}

	for name, id := range map[string]string{"unknown order": ids.New(), "customer id": customerID(t, e)} {
		if _, err := srv.oq.GetOrderHistory(ctxT(t), &ordersv1.GetOrderHistoryRequest{OrderId: id}); status.Code(err) != codes.NotFound {
			t.Errorf("%s: %v, want NotFound", name, err)
		}
	}
}

// customerID registers a customer in the event store and returns its id.
func customerID(t *testing.T, e *sharedEnv) string {
	id := ids.New()
	registerCustomer(t, e.store, id)
	return id
}

// replayed returns the order rebuilt from its first version events read back from the store,
// rendered as GetOrderAt renders it.
func replayed(t *testing.T, e *sharedEnv, id string, version int64) *ordersv1.Order {
	t.Helper()
	return codec.OrderToProto(codectest.ReplayedOrder(ctxT(t), t, e.store, id, version))
}

func TestGetOrderAtVersion(t *testing.T) {
	srv, e := defaultServer(t)
	id := ids.New()
	appendOrder(t, e.store, id, lifecycle(id, ids.New(), time.Now().Add(-time.Hour))...)

	atVersion := func(v int64) (*ordersv1.Order, error) {
		res, err := srv.oq.GetOrderAt(ctxT(t), &ordersv1.GetOrderAtRequest{OrderId: id, Point: &ordersv1.GetOrderAtRequest_Version{Version: v}})
		return res.GetOrder(), err
	}
	check := func(label string) {
		t.Helper()
		for v := int64(1); v <= 5; v++ {
			got, err := atVersion(v)
			if err != nil {
				t.Fatalf("%s: version %d: %v", label, v, err)
			}
			if want := replayed(t, e, id, v); !proto.Equal(got, want) {
				t.Fatalf("%s: version %d:\n got %v\nwant %v", label, v, got, want)
			}
		}
	}
	rebuilds := func(start string) float64 {
		return counter(t, srv.registry, "ordersys_query_rebuilds_total", map[string]string{"point": "version", "start": start})
	}

	check("without snapshot")
	if got := rebuilds(app.StartSnapshot); got != 0 {
		t.Fatalf("%v rebuilds from a snapshot, want 0", got)
	}

	codectest.SaveOrderSnapshot(ctxT(t), t, e.store, id, 3)
	check("with a snapshot at version 3")
	// Versions 3, 4 and 5 start from the snapshot; 1 and 2 lie before it.
	if got := rebuilds(app.StartSnapshot); got != 3 {
		t.Errorf("%v rebuilds from a snapshot, want 3", got)
	}

	// An unreadable snapshot (unknown schema version) is skipped: the answer stays right.
	if err := e.store.SaveSnapshot(ctxT(t), es.Snapshot{AggregateID: id, AggregateType: order.AggregateType, Version: 4,
		SchemaVersion: 99, State: []byte("?"), TakenAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	scratch := rebuilds(app.StartScratch)
	got, err := atVersion(5)
	if err != nil || !proto.Equal(got, replayed(t, e, id, 5)) {
		t.Fatalf("with a bad snapshot: %v, %v", got, err)
	}
	if rebuilds(app.StartScratch) != scratch+1 {
		t.Errorf("a bad snapshot did not fall back to a replay from the start")
	}

	// Beyond the current version: FAILED_PRECONDITION naming the rule.
	_, err = atVersion(6)
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("version 6: %v, want FailedPrecondition", err)
	}
	if pf := preconditionFailure(err); pf == nil || pf.GetViolations()[0].GetType() != app.RuleVersionNotReached {
		t.Errorf("version 6: details %v", status.Convert(err).Details())
	}
	_, err = atVersion(0)
	checkBadRequest(t, err, "version")

	for name, oid := range map[string]string{"unknown order": ids.New(), "customer id": customerID(t, e)} {
		_, err := srv.oq.GetOrderAt(ctxT(t), &ordersv1.GetOrderAtRequest{OrderId: oid, Point: &ordersv1.GetOrderAtRequest_Version{Version: 1}})
		if status.Code(err) != codes.NotFound {
			t.Errorf("%s: %v, want NotFound", name, err)
		}
	}
}

func TestGetOrderAtTime(t *testing.T) {
	srv, e := defaultServer(t)
	id := ids.New()
	t0 := ms(time.Now().Add(-time.Hour))
	appendOrder(t, e.store, id, lifecycle(id, ids.New(), t0)...) // events at t0, t0+1s, …, t0+4s

	atTime := func(at time.Time) (*ordersv1.Order, error) {
		res, err := srv.oq.GetOrderAt(ctxT(t), &ordersv1.GetOrderAtRequest{OrderId: id, Point: &ordersv1.GetOrderAtRequest_At{At: timestamppb.New(at)}})
		return res.GetOrder(), err
	}
	sec := func(f float64) time.Time { return t0.Add(time.Duration(f * float64(time.Second))) }
	cases := []struct {
		at      time.Time
		version int64
	}{
		{sec(0), 1}, {sec(0.5), 1}, {sec(1), 2}, {sec(1.5), 2}, {sec(2), 3}, {sec(2.999), 3}, {sec(3), 4}, {sec(4), 5}, {sec(3600), 5},
	}
	rebuilds := func(start string) float64 {
		return counter(t, srv.registry, "ordersys_query_rebuilds_total", map[string]string{"point": "time", "start": start})
	}
	check := func(label string) {
		t.Helper()
		for _, tc := range cases {
			got, err := atTime(tc.at)
			if err != nil {
				t.Fatalf("%s: at %v: %v", label, tc.at.Sub(t0), err)
			}
			if want := replayed(t, e, id, tc.version); !proto.Equal(got, want) {
				t.Fatalf("%s: at %v:\n got %v\nwant %v", label, tc.at.Sub(t0), got, want)
			}
		}
	}

	check("without snapshot")
	codectest.SaveOrderSnapshot(ctxT(t), t, e.store, id, 3) // covers the events up to t0+2s
	before := rebuilds(app.StartSnapshot)
	check("with a snapshot at version 3")
	// The snapshot serves the points at or after t0+2s (5 of the 9), the earlier ones replay.
	if got := rebuilds(app.StartSnapshot) - before; got != 5 {
		t.Errorf("%v rebuilds from the snapshot, want 5", got)
	}

	// Before the order existed: NOT_FOUND.
	if _, err := atTime(t0.Add(-time.Millisecond)); status.Code(err) != codes.NotFound {
		t.Errorf("before creation: %v, want NotFound", err)
	}
	// An invalid timestamp, and no point at all: INVALID_ARGUMENT.
	_, err := srv.oq.GetOrderAt(ctxT(t), &ordersv1.GetOrderAtRequest{OrderId: id, Point: &ordersv1.GetOrderAtRequest_At{At: &timestamppb.Timestamp{Nanos: -1}}})
	checkBadRequest(t, err, "at")
	_, err = srv.oq.GetOrderAt(ctxT(t), &ordersv1.GetOrderAtRequest{OrderId: id})
	checkBadRequest(t, err, "point")
	// An unknown order.
	_, err = srv.oq.GetOrderAt(ctxT(t), &ordersv1.GetOrderAtRequest{OrderId: ids.New(), Point: &ordersv1.GetOrderAtRequest_At{At: timestamppb.Now()}})
	if status.Code(err) != codes.NotFound {
		t.Errorf("unknown order: %v, want NotFound", err)
	}
}

// preconditionFailure returns the PreconditionFailure detail of a status error, or nil.
func preconditionFailure(err error) *errdetails.PreconditionFailure {
	for _, d := range status.Convert(err).Details() {
		if pf, ok := d.(*errdetails.PreconditionFailure); ok {
			return pf
		}
	}
	return nil
}

// checkBadRequest fails unless err is INVALID_ARGUMENT with a BadRequest field violation on field.
func checkBadRequest(t *testing.T, err error, field string) {
	t.Helper()
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("got %v, want InvalidArgument on %s", err, field)
	}
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field {
					return
				}
			}
		}
	}
	t.Fatalf("InvalidArgument without a violation on %s: %v %v", field, err, status.Convert(err).Details())
}

// TestGetOrderHistoryPages walks an order's history two events at a time: every event once,
// in order, then an empty token; a token is refused for another order.
func TestGetOrderHistoryPages(t *testing.T) {
	srv, e := defaultServer(t)
	id := ids.New()
	envs := appendOrder(t, e.store, id, lifecycle(id, ids.New(), time.Now())...)
	var got []int64
	token := ""
	for page := 0; ; page++ {
		res, err := srv.oq.GetOrderHistory(ctxT(t), &ordersv1.GetOrderHistoryRequest{OrderId: id, PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.GetEvents()) > 2 {
			t.Fatalf("page %d holds %d events, asked for 2", page, len(res.GetEvents()))
		}
		for _, ev := range res.GetEvents() {
			got = append(got, ev.GetSequence())
		}
		if token = res.GetNextPageToken(); token == "" {
			break
		}
		if page > len(envs) {
			t.Fatal("paging does not end")
		}
		if page == 0 {
			other := ids.New()
			_, err := srv.oq.GetOrderHistory(ctxT(t), &ordersv1.GetOrderHistoryRequest{OrderId: other, PageToken: token})
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("token of order %s used for %s: %v, want InvalidArgument", id, other, err)
			}
		}
	}
	if len(got) != len(envs) {
		t.Fatalf("sequences %v, want 1..%d", got, len(envs))
	}
	for i, seq := range got {
		if seq != int64(i+1) {
			t.Fatalf("sequences %v, want 1..%d in order", got, len(envs))
		}
	}
}
