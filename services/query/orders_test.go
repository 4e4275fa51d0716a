package query_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/services/query/internal/grpcapi"
)

func TestGetOrderReturnsTheReadModelRow(t *testing.T) {
	srv, e := defaultServer(t)
	row := rowOrder(ids.New(), ids.New(), order.StatusShipped, time.Now().Add(-time.Hour), 4)
	saveRow(t, e, nil, row)

	res, err := srv.oq.GetOrder(ctxT(t), &ordersv1.GetOrderRequest{OrderId: strings.ToUpper(row.State.AggregateID())})
	if err != nil {
		t.Fatal(err)
	}
	want := grpcapi.OrderToProto(row)
	if !proto.Equal(res.GetOrder(), want) {
		t.Fatalf("GetOrder:\n got %v\nwant %v", res.GetOrder(), want)
	}
	if res.GetOrder().GetCustomerEmail() != "ada@example.com" || res.GetOrder().GetCustomerName() != "Ada Lovelace" {
		t.Errorf("customer details missing: %v", res.GetOrder())
	}

	// A min_version the row already has answers at once.
	v := int64(4)
	if _, err := srv.oq.GetOrder(ctxT(t), &ordersv1.GetOrderRequest{OrderId: row.State.AggregateID(), MinVersion: &v}); err != nil {
		t.Fatal(err)
	}
	if got := counter(t, srv.registry, "ordersys_query_min_version_requests_total", map[string]string{"result": "ready"}); got != 1 {
		t.Errorf("ready min_version requests = %v, want 1", got)
	}
}

func TestGetOrderWaitsForMinVersion(t *testing.T) {
	srv, e := defaultServer(t)
	row := rowOrder(ids.New(), ids.New(), order.StatusCreated, time.Now(), 1)
	saveRow(t, e, nil, row)
	next := withVersion(row, order.StatusConfirmed, 2)

	written := make(chan time.Time, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		saveRow(t, e, &row, next)
		written <- time.Now()
	}()
	ctx, cancel := context.WithTimeout(ctxT(t), 10*time.Second)
	defer cancel()
	start := time.Now()
	v := int64(2)
	res, err := srv.oq.GetOrder(ctx, &ordersv1.GetOrderRequest{OrderId: row.State.AggregateID(), MinVersion: &v})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if got := res.GetOrder(); got.GetVersion() != 2 || got.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_CONFIRMED {
		t.Fatalf("GetOrder returned version %d status %v, want 2 CONFIRMED", got.GetVersion(), got.GetStatus())
	}
	<-written
	if took < 200*time.Millisecond {
		t.Errorf("returned after %v, before the write", took)
	}
	if got := counter(t, srv.registry, "ordersys_query_read_model_wait_seconds", map[string]string{"outcome": "reached"}); got != 1 {
		t.Errorf("waits reached = %v, want 1", got)
	}
	if got := counter(t, srv.registry, "ordersys_query_min_version_requests_total", map[string]string{"result": "waited"}); got != 1 {
		t.Errorf("waited min_version requests = %v, want 1", got)
	}
}

func TestGetOrderMinVersionTimesOut(t *testing.T) {
	srv, e := defaultServer(t)
	row := rowOrder(ids.New(), ids.New(), order.StatusCreated, time.Now(), 1)
	saveRow(t, e, nil, row)

	ctx, cancel := context.WithTimeout(ctxT(t), 400*time.Millisecond)
	defer cancel()
	start := time.Now()
	v := int64(5)
	_, err := srv.oq.GetOrder(ctx, &ordersv1.GetOrderRequest{OrderId: row.State.AggregateID(), MinVersion: &v})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("GetOrder: %v, want DeadlineExceeded", err)
	}
	// The server answers before the client gives up, saying how far the read model got.
	if msg := status.Convert(err).Message(); !strings.Contains(msg, "is at version 1") || !strings.Contains(msg, "version 5") {
		t.Errorf("message %q does not explain the timeout", msg)
	}
	if took := time.Since(start); took < 300*time.Millisecond || took > 5*time.Second {
		t.Errorf("timed out after %v, want about 400ms", took)
	}
	if got := counter(t, srv.registry, "ordersys_query_read_model_wait_timeouts_total", nil); got != 1 {
		t.Errorf("wait timeouts = %v, want 1", got)
	}
}

func TestGetOrderWaitsForAnOrderNotProjectedYet(t *testing.T) {
	srv, e := defaultServer(t)
	id, cust := ids.New(), ids.New()
	envs := appendOrder(t, e.store, id, lifecycle(id, cust, time.Now())[:1]...)
	row := rowOrder(id, cust, order.StatusCreated, envs[0].OccurredAt, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		saveRow(t, e, nil, row)
	}()
	ctx, cancel := context.WithTimeout(ctxT(t), 10*time.Second)
	defer cancel()
	res, err := srv.oq.GetOrder(ctx, &ordersv1.GetOrderRequest{OrderId: id})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetOrder().GetVersion() != 1 {
		t.Errorf("version %d, want 1", res.GetOrder().GetVersion())
	}
}

func TestGetOrderNotFound(t *testing.T) {
	srv, e := defaultServer(t)
	// No row, no events: NOT_FOUND at once, even with min_version.
	for _, mv := range []*int64{nil, proto.Int64(3)} {
		start := time.Now()
		_, err := srv.oq.GetOrder(ctxT(t), &ordersv1.GetOrderRequest{OrderId: ids.New(), MinVersion: mv})
		if status.Code(err) != codes.NotFound {
			t.Fatalf("GetOrder(min_version %v): %v, want NotFound", mv, err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("NotFound took %v", took)
		}
	}
	// A customer's id is not an order.
	cust := ids.New()
	registerCustomer(t, e.store, cust)
	if _, err := srv.oq.GetOrder(ctxT(t), &ordersv1.GetOrderRequest{OrderId: cust}); status.Code(err) != codes.NotFound {
		t.Fatalf("GetOrder(customer id): %v, want NotFound", err)
	}
}

// newestFirst reports whether a sorts before b in a list: created_at descending, then order id
// descending (the clustering order of the list tables).
func newestFirst(a, b *ordersv1.Order) bool {
	ta, tb := a.GetCreatedAt().AsTime(), b.GetCreatedAt().AsTime()
	if !ta.Equal(tb) {
		return ta.After(tb)
	}
	ua, _ := gocql.ParseUUID(a.GetOrderId())
	ub, _ := gocql.ParseUUID(b.GetOrderId())
	return bytes.Compare(ua[:], ub[:]) > 0
}

// collect pages through a list until its last page, checking every page's size.
func collect(t *testing.T, size int, list func(token string) ([]*ordersv1.Order, string, error)) ([]*ordersv1.Order, int) {
	t.Helper()
	var all []*ordersv1.Order
	token, pages := "", 0
	for {
		orders, next, err := list(token)
		if err != nil {
			t.Fatalf("page %d: %v", pages+1, err)
		}
		pages++
		if len(orders) > size || (next != "" && len(orders) != size) {
			t.Fatalf("page %d has %d orders (page size %d, next token %q)", pages, len(orders), size, next)
		}
		all = append(all, orders...)
		if next == "" {
			return all, pages
		}
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		token = next
	}
}

// checkList checks that got is newest first without duplicates and holds exactly the ids of
// want (at least them, when others may be listed too).
func checkList(t *testing.T, got []*ordersv1.Order, want []readmodel.Order, others bool) {
	t.Helper()
	seen := map[string]bool{}
	for i, o := range got {
		if seen[o.GetOrderId()] {
			t.Fatalf("order %s listed twice", o.GetOrderId())
		}
		seen[o.GetOrderId()] = true
		if i > 0 && !newestFirst(got[i-1], o) {
			t.Fatalf("orders %d and %d out of order: %v then %v", i-1, i, got[i-1].GetCreatedAt().AsTime(), o.GetCreatedAt().AsTime())
		}
	}
	if others {
		for _, w := range want {
			if !seen[w.State.AggregateID()] {
				t.Fatalf("order %s missing from the list", w.State.AggregateID())
			}
		}
		return
	}
	wantIDs := make([]string, len(want))
	for i, w := range want {
		wantIDs[i] = w.State.AggregateID()
	}
	gotIDs := make([]string, len(got))
	for i, o := range got {
		gotIDs[i] = o.GetOrderId()
	}
	slices.Sort(wantIDs)
	slices.Sort(gotIDs)
	if !slices.Equal(gotIDs, wantIDs) {
		t.Fatalf("listed %d orders, want %d:\n got %v\nwant %v", len(gotIDs), len(wantIDs), gotIDs, wantIDs)
	}
}

func TestListOrdersByCustomerPagesNewestFirst(t *testing.T) {
	srv, e := defaultServer(t)
	cust := ids.New()
	base := time.Now().Add(-24 * time.Hour)
	var rows []readmodel.Order
	for i := range 23 {
		// Pairs share a creation time, so the order id breaks ties.
		r := rowOrder(ids.New(), cust, order.StatusCreated, base.Add(time.Duration(i/2)*time.Minute), 1)
		saveRow(t, e, nil, r)
		rows = append(rows, r)
	}
	// Another customer's order stays out.
	saveRow(t, e, nil, rowOrder(ids.New(), ids.New(), order.StatusCreated, base, 1))

	got, pages := collect(t, 5, func(token string) ([]*ordersv1.Order, string, error) {
		res, err := srv.oq.ListOrdersByCustomer(ctxT(t), &ordersv1.ListOrdersByCustomerRequest{CustomerId: cust, PageSize: 5, PageToken: token})
		return res.GetOrders(), res.GetNextPageToken(), err
	})
	if pages != 5 {
		t.Errorf("%d pages, want 5", pages)
	}
	checkList(t, got, rows, false)
	if got[0].GetCustomerName() != "Ada Lovelace" || len(got[0].GetItems()) != 2 {
		t.Errorf("list rows are not complete orders: %v", got[0])
	}

	// Page size 0 means 20; above the cap it is clamped (all 23 fit under 100).
	res, err := srv.oq.ListOrdersByCustomer(ctxT(t), &ordersv1.ListOrdersByCustomerRequest{CustomerId: cust})
	if err != nil || len(res.GetOrders()) != 20 || res.GetNextPageToken() == "" {
		t.Fatalf("default page: %d orders, token %q, err %v; want 20 and a token", len(res.GetOrders()), res.GetNextPageToken(), err)
	}
	res, err = srv.oq.ListOrdersByCustomer(ctxT(t), &ordersv1.ListOrdersByCustomerRequest{CustomerId: cust, PageSize: 100000})
	if err != nil || len(res.GetOrders()) != 23 || res.GetNextPageToken() != "" {
		t.Fatalf("big page: %d orders, token %q, err %v; want 23 and no token", len(res.GetOrders()), res.GetNextPageToken(), err)
	}

	// A customer without orders has an empty list.
	res, err = srv.oq.ListOrdersByCustomer(ctxT(t), &ordersv1.ListOrdersByCustomerRequest{CustomerId: ids.New()})
	if err != nil || len(res.GetOrders()) != 0 || res.GetNextPageToken() != "" {
		t.Fatalf("empty list: %v, %v", res, err)
	}
}

// TestListOrdersByStatusMergesShards pages through the DELIVERED list of the shared keyspace
// (which may hold rows of earlier runs of the test, with -count): the whole list must be newest
// first without duplicates and hold every order written here.
func TestListOrdersByStatusMergesShards(t *testing.T) {
	srv, e := defaultServer(t)
	base := time.Now().Add(-48 * time.Hour)
	var rows []readmodel.Order
	shards := map[int]bool{}
	for i := range 30 {
		r := rowOrder(ids.New(), ids.New(), order.StatusDelivered, base.Add(time.Duration(i%11)*time.Minute), 5)
		saveRow(t, e, nil, r)
		rows = append(rows, r)
		shards[readmodel.StatusShard(r.State.AggregateID())] = true
	}
	if len(shards) < 4 {
		t.Fatalf("orders fell in %d shards only", len(shards))
	}
	// An order that moved on from CONFIRMED to SHIPPED is listed under SHIPPED only.
	moved := rowOrder(ids.New(), ids.New(), order.StatusConfirmed, base, 3)
	saveRow(t, e, nil, moved)
	shipped := withVersion(moved, order.StatusShipped, 4)
	saveRow(t, e, &moved, shipped)

	for _, size := range []int32{7, 1} {
		got, pages := collect(t, int(size), func(token string) ([]*ordersv1.Order, string, error) {
			res, err := srv.oq.ListOrdersByStatus(ctxT(t), &ordersv1.ListOrdersByStatusRequest{
				Status: ordersv1.OrderStatus_ORDER_STATUS_DELIVERED, PageSize: size, PageToken: token})
			return res.GetOrders(), res.GetNextPageToken(), err
		})
		if least := (30 + int(size) - 1) / int(size); pages < least {
			t.Errorf("page size %d: %d pages, want at least %d", size, pages, least)
		}
		checkList(t, got, rows, true)
		for _, o := range got {
			if o.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_DELIVERED {
				t.Fatalf("order %s has status %v in the DELIVERED list", o.GetOrderId(), o.GetStatus())
			}
		}
	}

	listIDs := func(st ordersv1.OrderStatus) []string {
		var out []string
		token := ""
		for {
			res, err := srv.oq.ListOrdersByStatus(ctxT(t), &ordersv1.ListOrdersByStatusRequest{Status: st, PageSize: 100, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range res.GetOrders() {
				out = append(out, o.GetOrderId())
			}
			if token = res.GetNextPageToken(); token == "" {
				return out
			}
		}
	}
	id := moved.State.AggregateID()
	if !slices.Contains(listIDs(ordersv1.OrderStatus_ORDER_STATUS_SHIPPED), id) {
		t.Errorf("shipped order %s missing from the SHIPPED list", id)
	}
	if slices.Contains(listIDs(ordersv1.OrderStatus_ORDER_STATUS_CONFIRMED), id) {
		t.Errorf("shipped order %s still in the CONFIRMED list", id)
	}
}

func TestPageTokensAreBoundToTheirList(t *testing.T) {
	srv, e := defaultServer(t)
	cust := ids.New()
	for i := range 3 {
		saveRow(t, e, nil, rowOrder(ids.New(), cust, order.StatusCancelled, time.Now().Add(time.Duration(-i)*time.Minute), 2))
	}
	res, err := srv.oq.ListOrdersByCustomer(ctxT(t), &ordersv1.ListOrdersByCustomerRequest{CustomerId: cust, PageSize: 1})
	if err != nil || res.GetNextPageToken() == "" {
		t.Fatalf("first page: %v, %v", res, err)
	}
	custToken := res.GetNextPageToken()
	sres, err := srv.oq.ListOrdersByStatus(ctxT(t), &ordersv1.ListOrdersByStatusRequest{Status: ordersv1.OrderStatus_ORDER_STATUS_CANCELLED, PageSize: 1})
	if err != nil || sres.GetNextPageToken() == "" {
		t.Fatalf("first status page: %v, %v", sres, err)
	}
	statusToken := sres.GetNextPageToken()

	cases := []struct {
		name string
		call func() error
	}{
		{"garbage", func() error {
			_, err := srv.oq.ListOrdersByCustomer(ctxT(t), &ordersv1.ListOrdersByCustomerRequest{CustomerId: cust, PageToken: "not a token!"})
			return err
		}},
		{"tampered", func() error {
			_, err := srv.oq.ListOrdersByCustomer(ctxT(t), &ordersv1.ListOrdersByCustomerRequest{CustomerId: cust, PageToken: custToken[:len(custToken)-3]})
			return err
		}},
		{"another customer", func() error {
			_, err := srv.oq.ListOrdersByCustomer(ctxT(t), &ordersv1.ListOrdersByCustomerRequest{CustomerId: ids.New(), PageToken: custToken})
			return err
		}},
		{"customer token on a status list", func() error {
			_, err := srv.oq.ListOrdersByStatus(ctxT(t), &ordersv1.ListOrdersByStatusRequest{Status: ordersv1.OrderStatus_ORDER_STATUS_CANCELLED, PageToken: custToken})
			return err
		}},
		{"another status", func() error {
			_, err := srv.oq.ListOrdersByStatus(ctxT(t), &ordersv1.ListOrdersByStatusRequest{Status: ordersv1.OrderStatus_ORDER_STATUS_CREATED, PageToken: statusToken})
			return err
		}},
		{"status token on a customer list", func() error {
			_, err := srv.oq.ListOrdersByCustomer(ctxT(t), &ordersv1.ListOrdersByCustomerRequest{CustomerId: cust, PageToken: statusToken})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkBadRequest(t, tc.call(), "page_token")
		})
	}
	// The genuine tokens still work.
	if _, err := srv.oq.ListOrdersByCustomer(ctxT(t), &ordersv1.ListOrdersByCustomerRequest{CustomerId: cust, PageSize: 1, PageToken: custToken}); err != nil {
		t.Fatal(err)
	}
}
