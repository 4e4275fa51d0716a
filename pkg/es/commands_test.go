package es_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ordersys/ordersys/pkg/es"
)

func TestCommandsToForget(t *testing.T) {
	recs := map[string]es.CommandRecord{}
	for i := 1; i <= 5; i++ {
		recs[fmt.Sprintf("c%d", i)] = es.CommandRecord{FirstSequence: int64(i), LastSequence: int64(i)}
	}
	recs["tie"] = es.CommandRecord{FirstSequence: 1, LastSequence: 1}
	cases := []struct {
		max  int
		want []string
	}{
		{max: 7, want: nil},
		{max: 100, want: nil},
		{max: 6, want: []string{"c1"}},
		{max: 4, want: []string{"c1", "tie", "c2"}},
		{max: 1, want: []string{"c1", "tie", "c2", "c3", "c4", "c5"}},
		{max: 0, want: []string{"c1", "tie", "c2", "c3", "c4", "c5"}},
	}
	for _, c := range cases {
		got := es.CommandsToForget(recs, c.max)
		if !slices.Equal(got, c.want) {
			t.Errorf("max %d: got %v, want %v", c.max, got, c.want)
		}
	}
	if got := es.CommandsToForget(nil, 1); got != nil {
		t.Errorf("empty record: got %v", got)
	}
}
