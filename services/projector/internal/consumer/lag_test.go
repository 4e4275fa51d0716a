package consumer

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestLagIsTheAgeOfTheOldestMessageNotApplied: a partition's lag is the age of the oldest
// message read and not yet applied, whatever order the lanes finish in; 0 once everything
// read is applied; the series goes when the partition is given up.
func TestLagIsTheAgeOfTheOldestMessageNotApplied(t *testing.T) {
	now := time.Now()
	l := newLagCollector()
	w := newOffsetWindow()
	k := lagKey{"orders", "1", "order-events", "0"}
	untrack := l.track(k, w)
	if got := l.ages(now)[k]; got != 0 {
		t.Fatalf("lag of an empty window: %v, want 0", got)
	}
	w.add(5, now.Add(-30*time.Second))
	w.add(6, now.Add(-10*time.Second))
	w.add(7, now.Add(-time.Second))
	w.finish(6, func(int64) {}) // a later lane done first: 5 is still the oldest
	if got := l.ages(now)[k]; got != 30 {
		t.Fatalf("lag with 5 pending: %v, want 30", got)
	}
	w.finish(5, func(int64) {})
	if got := l.ages(now)[k]; got != 1 {
		t.Fatalf("lag with 7 pending: %v, want 1", got)
	}
	if got := l.ages(now.Add(9 * time.Second))[k]; got != 10 {
		t.Fatalf("lag of a stuck message 9 s later: %v, want 10 (it grows)", got)
	}
	w.finish(7, func(int64) {})
	if got := l.ages(now)[k]; got != 0 {
		t.Fatalf("lag once everything read is applied: %v, want 0", got)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(l)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ordersys_projector_lag_seconds Age of the oldest message of a partition this projector has read and not yet applied (now minus its record timestamp); 0 when caught up.
# TYPE ordersys_projector_lag_seconds gauge
ordersys_projector_lag_seconds{partition="0",projection="orders",topic="order-events",version="1"} 0
`), "ordersys_projector_lag_seconds"); err != nil {
		t.Fatal(err)
	}
	untrack()
	if n := testutil.CollectAndCount(l); n != 0 {
		t.Fatalf("%d series after the partition was given up, want 0", n)
	}
}
