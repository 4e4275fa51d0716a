package outboxpoll

import (
	"testing"
	"time"

	"github.com/gocql/gocql"
)

func TestTrackerAdvancesOverSettledPrefixOnly(t *testing.T) {
	b := int64(29000000)
	start := bucketStart(b)
	tr := newTracker(b, gocql.UUID{})
	ids := []gocql.UUID{gocql.UUIDFromTime(start.Add(time.Second)), gocql.UUIDFromTime(start.Add(2 * time.Second)), gocql.UUIDFromTime(start.Add(3 * time.Second))}
	var done []func()
	for _, id := range ids {
		done = append(done, tr.row(id))
	}
	tr.pollEnd(start.Add(5 * time.Second))
	done[0]()
	done[2]()
	last, safe, unsettled, _ := tr.state()
	if last != ids[0] || !safe.Equal(ids[0].Time()) || unsettled != 1 {
		t.Fatalf("state %v %v %d; want the first row, 1 unsettled", last, safe, unsettled)
	}
	done[1]()
	done[1]() // settling twice is harmless
	last, safe, unsettled, _ = tr.state()
	if last != ids[2] || !safe.Equal(start.Add(5*time.Second)) || unsettled != 0 {
		t.Fatalf("state %v %v %d; want the last row and the poll horizon", last, safe, unsettled)
	}
	// A poll end past the bucket vouches only for the bucket.
	tr.pollEnd(start.Add(10 * time.Minute))
	if _, safe, _, _ = tr.state(); !safe.Equal(bucketStart(b + 1)) {
		t.Fatalf("safe through %v, want the bucket's end %v", safe, bucketStart(b+1))
	}
}
