package consumer

import (
	"hash/fnv"
	"sync"
	"time"
)

// Projecting a partition on several lanes.
//
// Order matters only within an aggregate: every read-model row is written by the events of one
// aggregate (an order's rows by its events, a customer's contact row by the customer's), so a
// partition's messages are projected on DefaultKeyLanes goroutines, each message on the lane of
// its aggregate (the aggregate_id header, else the record's key, which the relay sets to the
// same id), in partition order within a lane. A
// message's offset is committed only once it and every message before it in the partition are
// done with (offsetWindow), so a restart or a rebalance redoes what was not finished, exactly
// as with one goroutine per partition; handlers drop what they already applied by version. (The
// customer fan-out writes order rows from customer events, as it did before: those come from
// the customer topic, on other partitions, and docs/read-models.md says why that is safe.) A
// message dead-lettered on one lane while an earlier offset is unfinished on another is
// dead-lettered again if the partition is redone: a second dead letter, never a loss.

// DefaultKeyLanes is how many messages of one partition are projected at once (by default).
const DefaultKeyLanes = 4

// keyLaneDepth is how many messages may wait for one lane before the partition's reader waits.
const keyLaneDepth = 64

// KeyLane returns the lane, out of n, of a message with key: the same key always gets the same
// lane.
func KeyLane(key []byte, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write(key)
	return int(uint64(h.Sum32()) * uint64(n) >> 32) // the high bits: FNV's low bits mix poorly
}

// offsetWindow tracks the offsets of one partition handed out and not yet done with, in the
// order they were read, and says how far the partition may be committed.
type offsetWindow struct {
	mu      sync.Mutex
	pending []int64     // read, in order; the head is the oldest not yet done with
	times   []time.Time // the record timestamps of pending
	done    map[int64]bool
}

func newOffsetWindow() *offsetWindow { return &offsetWindow{done: map[int64]bool{}} }

// add records an offset handed to a lane (offsets come in increasing order) and its record
// timestamp.
func (w *offsetWindow) add(offset int64, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append(w.pending, offset)
	w.times = append(w.times, at)
}

// oldest returns the record timestamp of the oldest message read and not yet done with (false
// when there is none, or its timestamp is unset).
func (w *offsetWindow) oldest() (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.times) == 0 || w.times[0].IsZero() {
		return time.Time{}, false
	}
	return w.times[0], true
}

// finish records that offset is done with; when the offset to commit (the one after the last
// offset before which everything is done) moves, it calls moved with it, under the window's
// lock, so that what moved publishes only ever grows.
func (w *offsetWindow) finish(offset int64, moved func(next int64)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done[offset] = true
	next, advanced := int64(0), false
	for len(w.pending) > 0 && w.done[w.pending[0]] {
		delete(w.done, w.pending[0])
		next, advanced = w.pending[0]+1, true
		w.pending, w.times = w.pending[1:], w.times[1:]
	}
	if advanced {
		moved(next)
	}
}
