package cql

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ordersys/ordersys/pkg/es"
)

func testIntent(agg string, events, size int) *intent {
	in := &intent{req: es.AppendRequest{AggregateID: agg}}
	for range events {
		in.envelopes = append(in.envelopes, []byte(strings.Repeat("x", size)))
	}
	return in
}

// TestGroupIntentsKeepsLimitsAndOrder: intents are grouped by key in their order, no group goes
// over the row or byte limit unless it holds a single intent larger than the limits.
func TestGroupIntentsKeepsLimitsAndOrder(t *testing.T) {
	var ins []*intent
	for i := range 300 {
		ins = append(ins, testIntent(uuid.NewString(), 1+i%3, 100))
	}
	big := testIntent(uuid.NewString(), maxGroupRows+1, 10)
	huge := testIntent(uuid.NewString(), 1, maxGroupBytes+1)
	ins = append(ins, big, huge)
	key := func(in *intent) any { return ShardOf(in.req.AggregateID) }
	groups := groupIntents(ins, key)
	seen := 0
	pos := map[*intent]int{}
	for i, in := range ins {
		pos[in] = i
	}
	for _, g := range groups {
		rows, bytes := 0, 0
		for j, in := range g {
			if key(in) != key(g[0]) {
				t.Fatalf("group mixes keys %v and %v", key(g[0]), key(in))
			}
			if j > 0 && pos[in] < pos[g[j-1]] {
				t.Fatal("group out of the intents' order")
			}
			rows += len(in.envelopes)
			for _, e := range in.envelopes {
				bytes += len(e)
			}
		}
		if len(g) > 1 && (rows > maxGroupRows || bytes > maxGroupBytes) {
			t.Fatalf("group of %d intents has %d rows, %d bytes: over the limits", len(g), rows, bytes)
		}
		if (g[0] == big || g[0] == huge) && len(g) != 1 {
			t.Fatal("an intent over the limits shares its group")
		}
		seen += len(g)
	}
	if seen != len(ins) {
		t.Fatalf("groups hold %d intents, want %d", seen, len(ins))
	}
	if len(groups) > 20 {
		t.Fatalf("%d groups for 300 small intents in %d shards: not grouped", len(groups), OutboxShards)
	}
}
