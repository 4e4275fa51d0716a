package readmodel

import (
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/domain/order"
)

func row(t int, ghost bool) scanned {
	k := key{createdAt: time.Unix(int64(t), 0).UTC(), orderID: gocql.TimeUUID()}
	s := scanned{key: k, ghost: ghost}
	if !ghost {
		s.order = Order{State: order.New(k.orderID.String())}
	}
	return s
}

// A shard whose fetched rows are all ghosts but whose fetch was full may hold rows newer than
// the other shards' rows: the merge must not emit older rows of another shard ahead of them.
func TestMergeStopsAtAShardThatMayHoldNewerRows(t *testing.T) {
	a := &partition{shard: 0, limit: 3, rows: []scanned{row(10, true), row(9, true), row(8, true)}}
	b := &partition{shard: 1, limit: 3, rows: []scanned{row(5, false), row(4, false)}}
	page := merge([]*partition{a, b}, 2, "s:CREATED")
	if len(page.Orders) != 0 {
		t.Fatalf("merge emitted %d rows of shard 1 before reading past shard 0's ghosts", len(page.Orders))
	}
	if page.NextPageToken == "" {
		t.Fatal("no next page token")
	}
	tok, err := decodeToken(page.NextPageToken, "s:CREATED")
	if err != nil {
		t.Fatal(err)
	}
	if k, ok, _ := tok.P[0].key(); !ok || !k.createdAt.Equal(a.rows[2].key.createdAt) || tok.P[0].X {
		t.Fatalf("shard 0 cursor %+v, want after its last ghost", tok.P[0])
	}
	if _, ok, _ := tok.P[1].key(); ok || tok.P[1].X {
		t.Fatalf("shard 1 cursor %+v, want untouched", tok.P[1])
	}
}

// A shard that returned fewer rows than asked for is exhausted: the others go on.
func TestMergeContinuesPastAnExhaustedShard(t *testing.T) {
	a := &partition{shard: 0, limit: 3, rows: []scanned{row(10, false)}}
	b := &partition{shard: 1, limit: 3, rows: []scanned{row(5, false), row(4, false)}}
	page := merge([]*partition{a, b}, 3, "s:CREATED")
	if len(page.Orders) != 3 || page.NextPageToken != "" {
		t.Fatalf("got %d orders, token %q", len(page.Orders), page.NextPageToken)
	}
}
