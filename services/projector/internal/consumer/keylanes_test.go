package consumer

import (
	"testing"
	"time"
)

// TestOffsetWindowCommitsOnlyWhatIsDoneBefore: an offset finished on one lane before an earlier
// one on another lane is not committable until the earlier one is done; gaps in the offsets
// (compacted topics) do not hold the window.
func TestOffsetWindowCommitsOnlyWhatIsDoneBefore(t *testing.T) {
	w := newOffsetWindow()
	for _, o := range []int64{10, 11, 13, 14} {
		w.add(o, time.Time{})
	}
	steps := []struct {
		finish int64
		next   int64
		moved  bool
	}{
		{11, 0, false}, // 10 still open
		{14, 0, false},
		{10, 12, true}, // 10 and 11 done
		{13, 15, true}, // 13 and 14 done (12 was never read)
	}
	for i, s := range steps {
		next, moved := int64(0), false
		w.finish(s.finish, func(n int64) { next, moved = n, true })
		if next != s.next || moved != s.moved {
			t.Fatalf("step %d: finish(%d) = %d, %v; want %d, %v", i, s.finish, next, moved, s.next, s.moved)
		}
	}
}

// TestKeyLaneIsStable: one key always has one lane, within range.
func TestKeyLaneIsStable(t *testing.T) {
	seen := map[int]bool{}
	for i := range 100 {
		key := []byte{byte(i), byte(i * 7)} // FNV-1a's two low bits are the same for all of these
		l := KeyLane(key, 4)
		if l < 0 || l >= 4 || KeyLane(key, 4) != l {
			t.Fatalf("KeyLane(%v, 4) = %d, then %d", key, l, KeyLane(key, 4))
		}
		seen[l] = true
	}
	if len(seen) != 4 || KeyLane([]byte("x"), 1) != 0 {
		t.Fatalf("lanes used by 100 keys: %v; KeyLane with n=1: %d", seen, KeyLane([]byte("x"), 1))
	}
}

// TestStallCountsReportTransitionsOnly: with two lanes of a partition stalled, the partition is
// reported stalled once and healthy again only when the second recovers.
func TestStallCountsReportTransitionsOnly(t *testing.T) {
	var s stallCounts
	var got []bool
	report := func(stalled bool) { got = append(got, stalled) }
	s.add("p", 1, report)  // lane A stalls
	s.add("p", 1, report)  // lane B stalls
	s.add("p", -1, report) // A recovers: B still stalled
	if len(got) != 1 || !got[0] {
		t.Fatalf("reports %v, want [true]", got)
	}
	s.add("p", -1, report) // B recovers
	if len(got) != 2 || got[1] {
		t.Fatalf("reports %v, want [true false]", got)
	}
}
