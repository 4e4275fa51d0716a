package outboxpoll

import (
	"sync"
	"time"

	"github.com/gocql/gocql"
)

// mark is one position in a bucket's read order: a row, or the end of a poll (every row with a
// time up to horizon has been read).
type mark struct {
	id      gocql.UUID
	horizon time.Time
	row     bool
	done    bool
}

// tracker follows the rows read from one minute bucket of one shard and turns settlements, which
// arrive in any order, into a checkpoint: the last row before which every row is settled.
type tracker struct {
	bucket      int64
	mu          sync.Mutex
	q           []*mark
	lastID      gocql.UUID
	safeThrough time.Time // every row of the bucket with a time up to this is settled
	unsettled   int
	version     uint64 // bumps when the checkpoint moves
}

func newTracker(bucket int64, lastID gocql.UUID) *tracker {
	t := &tracker{bucket: bucket, lastID: lastID, safeThrough: bucketStart(bucket)}
	if lastID != (gocql.UUID{}) {
		t.safeThrough = lastID.Time()
	}
	return t
}

// row registers a row read with the given id and returns the function that settles it.
func (t *tracker) row(id gocql.UUID) func() {
	m := &mark{id: id, row: true}
	t.mu.Lock()
	t.q = append(t.q, m)
	t.unsettled++
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		if !m.done {
			m.done = true
			t.unsettled--
			t.advance()
		}
		t.mu.Unlock()
	}
}

// skip records that every row up to id was read elsewhere (nothing to settle here).
func (t *tracker) skip(id gocql.UUID) {
	t.mu.Lock()
	t.q = append(t.q, &mark{id: id, row: true, done: true})
	t.advance()
	t.mu.Unlock()
}

// pollEnd records that every row of the bucket with a time up to horizon has been read. Rows of
// later buckets are not, so the time it vouches for stops at the bucket's end.
func (t *tracker) pollEnd(horizon time.Time) {
	if end := bucketStart(t.bucket + 1); horizon.After(end) {
		horizon = end
	}
	t.mu.Lock()
	t.q = append(t.q, &mark{horizon: horizon, done: true})
	t.advance()
	t.mu.Unlock()
}

func (t *tracker) advance() {
	n := 0
	for n < len(t.q) && t.q[n].done {
		m := t.q[n]
		if m.row {
			t.lastID = m.id
			if ts := m.id.Time(); ts.After(t.safeThrough) {
				t.safeThrough = ts
			}
		} else if m.horizon.After(t.safeThrough) {
			t.safeThrough = m.horizon
		}
		t.version++
		n++
	}
	if n > 0 {
		t.q = append(t.q[:0], t.q[n:]...)
	}
}

// state returns the settled position, the time up to which every row is settled, the number of
// unsettled rows and a version that changes when the position moves.
func (t *tracker) state() (lastID gocql.UUID, safeThrough time.Time, unsettled int, version uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastID, t.safeThrough, t.unsettled, t.version
}
