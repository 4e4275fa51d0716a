package cql_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
)

// TestWalkAggregatesResumesAndFinishes: a named walk lists every aggregate once in token order,
// a page at a time; stopped after a page (by its caller's context, in the page's callback) it
// resumes after that page; once round the ring it is done and a further run lists nothing.
func TestWalkAggregatesResumesAndFinishes(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	st := cql.NewEventStore(s, codec.NewRegistry(), cql.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want := map[string]bool{}
	for range 11 {
		id := uuid.NewString()
		if _, err := st.Append(ctx, faultRequest(id, 0, newIDs(2))); err != nil {
			t.Fatal(err)
		}
		want[id] = true
	}

	seen := map[string]int{}
	var last float64
	// walk runs the named walk, calling stop after stopAfter pages (0: never).
	walk := func(ctx context.Context, stopAfter int, stop func()) error {
		pages := 0
		return st.WalkAggregates(ctx, "walk-test", 3, func(p cql.WalkPage) error {
			if p.Fraction < last || p.Fraction <= 0 || p.Fraction > 1 || len(p.IDs) == 0 || len(p.IDs) > 3 {
				t.Fatalf("page %+v after fraction %v", p, last)
			}
			last = p.Fraction
			for _, id := range p.IDs {
				seen[id]++
			}
			if pages++; pages == stopAfter {
				stop()
			}
			return nil
		})
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	if err := walk(rctx, 2, stop); !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped walk: %v", err)
	}
	if pos, ok, err := st.WalkPosition(ctx, "walk-test"); err != nil || !ok || pos == cql.MinToken || pos == cql.WalkDone {
		t.Fatalf("position after two pages: %d %v %v", pos, ok, err)
	}
	if len(seen) != 6 {
		t.Fatalf("%d aggregates in the first two pages, want 6", len(seen))
	}
	if err := walk(ctx, 0, nil); err != nil {
		t.Fatal(err)
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("aggregate %s walked %d times", id, seen[id])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("walked %d aggregates, want %d", len(seen), len(want))
	}
	if pos, _, err := st.WalkPosition(ctx, "walk-test"); err != nil || pos != cql.WalkDone {
		t.Fatalf("position after the ring: %d %v", pos, err)
	}
	if err := st.WalkAggregates(ctx, "walk-test", 3, func(p cql.WalkPage) error {
		t.Fatalf("a finished walk listed %v", p.IDs)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
