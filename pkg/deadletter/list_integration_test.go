package deadletter_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/deadletter"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// TestListFiltersAndPages records dead letters in two topics over two hours and pages through
// them with every filter: the pages together hold exactly the matching dead letters, in order,
// each once; a foreign token is refused on page_token.
func TestListFiltersAndPages(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store := cql.NewDeadLetters(s)
	srv := deadletter.Server{Admin: &deadletter.Admin{Store: store,
		Topics: func(topic string) ([]string, error) {
			if topic != "" {
				return []string{topic}, nil
			}
			return []string{"a-events", "b-events"}, nil
		}}}
	aggs := []string{ids.New(), ids.New()}
	base := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Millisecond)
	type rec struct {
		topic, agg, reason string
		at                 time.Time
		id                 string
	}
	var all []rec
	for i := range 40 {
		r := rec{topic: []string{"a-events", "b-events"}[i%2], agg: aggs[i%3%2], at: base.Add(time.Duration(i) * 3 * time.Minute),
			reason: []string{"too large: 2 MiB", "refused by the broker: INVALID_RECORD", "undecodable envelope"}[i%3]}
		dl := &cql.DeadLetter{Topic: r.topic, ID: gocql.UUIDFromTime(r.at), AggregateID: r.agg, Sequence: int64(i + 1),
			EventID: ids.New(), EventType: "OrderCreated", Reason: r.reason, CreatedAt: r.at}
		if err := store.Put(ctx, dl); err != nil {
			t.Fatal(err)
		}
		r.id = dl.ID.String()
		all = append(all, r)
	}
	from, to := base.Add(20*time.Minute), base.Add(100*time.Minute)
	cases := []struct {
		name string
		req  *ordersv1.ListDeadLettersRequest
		keep func(rec) bool
	}{
		{"everything", &ordersv1.ListDeadLettersRequest{}, func(rec) bool { return true }},
		{"one topic", &ordersv1.ListDeadLettersRequest{Topic: "b-events"}, func(r rec) bool { return r.topic == "b-events" }},
		{"aggregate", &ordersv1.ListDeadLettersRequest{AggregateId: aggs[1]}, func(r rec) bool { return r.agg == aggs[1] }},
		{"reason", &ordersv1.ListDeadLettersRequest{ReasonContains: "REFUSED"}, func(r rec) bool { return r.reason[0] == 'r' }},
		{"time range and aggregate", &ordersv1.ListDeadLettersRequest{AggregateId: aggs[0],
			CreatedAfter: timestamppb.New(from), CreatedBefore: timestamppb.New(to)},
			func(r rec) bool { return r.agg == aggs[0] && !r.at.Before(from) && r.at.Before(to) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var want []string
			for _, topic := range []string{"a-events", "b-events"} {
				for _, r := range all {
					if r.topic == topic && c.keep(r) {
						want = append(want, r.id)
					}
				}
			}
			var got []string
			c.req.PageSize = 3
			for pages := 0; ; pages++ {
				if pages > 40 {
					t.Fatal("more pages than dead letters")
				}
				resp, err := srv.ListDeadLetters(ctx, c.req)
				if err != nil {
					t.Fatal(err)
				}
				if len(resp.GetDeadLetters()) > 3 {
					t.Fatalf("page of %d, asked for 3", len(resp.GetDeadLetters()))
				}
				for _, dl := range resp.GetDeadLetters() {
					got = append(got, dl.GetId())
				}
				if resp.GetNextPageToken() == "" {
					break
				}
				c.req.PageToken = resp.GetNextPageToken()
			}
			if !slices.Equal(got, want) {
				t.Errorf("pages hold %d dead letters %v\nwant %d %v", len(got), got, len(want), want)
			}
		})
	}
	for _, bad := range []*ordersv1.ListDeadLettersRequest{
		{PageToken: "not-a-token"},
		{AggregateId: "00000000-0000-0000-0000-000000000000"},
		{CreatedAfter: timestamppb.New(to), CreatedBefore: timestamppb.New(from)},
		{ReasonContains: fmt.Sprintf("%0201d", 0)},
	} {
		if _, err := srv.ListDeadLetters(ctx, bad); !errors.Is(err, es.ErrInvalidArgument) {
			t.Errorf("%v: %v, want an invalid argument", bad, err)
		}
	}
}
