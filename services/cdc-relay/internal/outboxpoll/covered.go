package outboxpoll

import (
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql"
)

// The rescan cursor skips what the fast cursor read late.
//
// The rescan cursor exists for rows that become visible after the fast cursor passed their id:
// it reads every row again once its id is RescanWindow old, so a row late by up to that window is
// still published. A row the fast cursor itself read when its id was already RescanWindow old
// needs no second reading: any row beside it that was still invisible then is late by more than
// the window, which the rescan does not promise to catch (and the writer's rules make rare:
// docs/outbox-protocol.md, step 3). That is the whole of a backlog — a relay starting after an
// outage, or behind by more than the window — which the rescan used to read a second time right
// behind the fast cursor, doubling the store's reads exactly when the relay is furthest behind.
//
// So the fast cursor records, per bucket, the range of ids it read in this term while they were
// at least RescanWindow old (from where its reading of the bucket started, up to a time), and the
// rescan cursor, when its position in that bucket is inside the range, moves its position to the
// range's end instead of reading it. Rows read fresh (the steady state: the fast cursor runs a
// safety window behind the clock) are outside every range and are read again as before.

// coverage is a range of one bucket that the fast cursor read late enough for the rescan to skip.
type coverage struct {
	start   gocql.UUID // the bucket's read position when this term's reading of it started (zero: its start)
	through time.Time  // every row with a time up to this, after start, was read once RescanWindow old
	pos     gocql.UUID // the read position after the last read noted
	open    bool       // every read so far was old enough: the next one, if it starts at pos, extends the range
}

// noteCovered records a read of sub s by the fast cursor at now, from position from, that
// returned rows (in id order) with horizon as its horizon. With a full batch below the horizon it
// read every visible row up to the last one's time (bar rows of that very time), else every
// visible row up to the horizon. The range grows while the reads follow each other and read only
// rows at least RescanWindow old; the first read of fresher rows closes it. Only the fast cursor,
// and only with a rescan running, keeps it.
func (c *cursor) noteCovered(s *sub, from gocql.UUID, rows []cql.OutboxRow, horizon, now time.Time) {
	if c.covered == nil {
		return
	}
	reached, to := horizon, from
	if n := countBehind(rows, horizon); n > 0 {
		to = rows[n-1].ID
		if n >= c.p.cfg.BatchSize {
			reached = to.Time().Add(-time.Microsecond)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cv := c.covered[s.bucket]
	if cv == nil {
		cv = &coverage{start: from, pos: from, open: true}
		c.covered[s.bucket] = cv
	}
	if !cv.open || cv.pos != from {
		cv.open = false
		return
	}
	if limit := now.Add(-c.p.cfg.RescanWindow); reached.After(limit) {
		reached, cv.open = limit, false
	}
	if reached.After(cv.through) {
		cv.through = reached
	}
	cv.pos = to
}

// coveredFrom returns where a reader at position pos of bucket may continue instead (no further
// than horizon), because the fast cursor read everything in between late enough; ok is false
// when it may not skip.
func (c *cursor) coveredFrom(bucket int64, pos gocql.UUID, horizon time.Time) (next gocql.UUID, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cv := c.covered[bucket]
	if cv == nil || cv.through.IsZero() || !atOrAfter(pos, cv.start) {
		return pos, false
	}
	// Never past the horizon, which is at most the fast cursor's settled position: rows of that
	// very time may still be unsettled (an outbox batch gives its rows one time), so stop just
	// before it; and never past the bucket's end.
	through := cv.through
	if limit := horizon.Add(-time.Microsecond); through.After(limit) {
		through = limit
	}
	if end := bucketStart(bucket + 1); through.After(end) {
		through = end
	}
	if !through.After(bucketStart(bucket)) {
		return pos, false // nothing of this bucket's own time is covered
	}
	next = gocql.MaxTimeUUID(through)
	if pos != (gocql.UUID{}) && !next.Time().After(pos.Time()) {
		return pos, false
	}
	return next, true
}

// forgetCovered drops the ranges of the buckets up to bucket (the rescan cursor is past them).
func (c *cursor) forgetCovered(bucket int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for b := range c.covered {
		if b <= bucket {
			delete(c.covered, b)
		}
	}
}

// atOrAfter says whether position pos is at or after position start in a bucket's read order
// (a zero position is the bucket's start). Ids of one time are compared only for equality: a
// position at the same time as start but another id does not count as after it.
func atOrAfter(pos, start gocql.UUID) bool {
	switch {
	case start == (gocql.UUID{}) || pos == start:
		return true
	case pos == (gocql.UUID{}):
		return false
	}
	return pos.Time().After(start.Time())
}

// skipCovered moves the rescan cursor's position in s past what the fast cursor read late
// enough (no further than horizon), marking the skipped range as read for its checkpoint.
func (c *cursor) skipCovered(s *sub, horizon time.Time) {
	if c.fast == nil {
		return
	}
	next, ok := c.fast.coveredFrom(s.bucket, s.lastID, horizon)
	if !ok {
		return
	}
	s.lastID = next
	s.tr.skip(next)
}

// countBehind returns how many of rows (in id order) have a time at or below horizon.
func countBehind(rows []cql.OutboxRow, horizon time.Time) int {
	n := 0
	for n < len(rows) && !rows[n].ID.Time().After(horizon) {
		n++
	}
	return n
}
