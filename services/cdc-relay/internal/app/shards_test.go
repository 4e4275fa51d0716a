package app

import (
	"slices"
	"testing"

	"github.com/ordersys/ordersys/pkg/cql"
)

// TestOwnedShardsSplitEvenly: every shard has exactly one owner among the live instances, and
// their shares differ by at most one; an instance that is not listed owns nothing.
func TestOwnedShardsSplitEvenly(t *testing.T) {
	for n := 1; n <= cql.OutboxShards+2; n++ {
		var live []string
		for i := range n {
			live = append(live, string(rune('a'+i)))
		}
		owners := map[int]int{}
		lo, hi := cql.OutboxShards, 0
		for _, o := range live {
			got := ownedShards(live, o)
			lo, hi = min(lo, len(got)), max(hi, len(got))
			for _, s := range got {
				owners[s]++
			}
		}
		if len(owners) != cql.OutboxShards {
			t.Errorf("%d instances: %d shards owned, want %d", n, len(owners), cql.OutboxShards)
		}
		for s, k := range owners {
			if k != 1 {
				t.Errorf("%d instances: shard %d has %d owners", n, s, k)
			}
		}
		if hi-lo > 1 {
			t.Errorf("%d instances: shares from %d to %d", n, lo, hi)
		}
	}
	if got := ownedShards([]string{"a", "b"}, "z"); got != nil {
		t.Errorf("a stranger owns %v", got)
	}
	if got := ownedShards([]string{"a", "b"}, "b"); !slices.Equal(got, []int{1, 3, 5, 7}) {
		t.Errorf("b of two owns %v", got)
	}
}
