package consumer

import (
	"bytes"
	"context"
	"hash/fnv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
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

// Within a lane, the last step of a message that the handler hands back (app.Finisher: the
// orders projection's re-read of the customer's details after an order write) runs while the
// lane goes on with the next message: at most one such step per lane at a time, and never
// beside a message of the same aggregate (the lane waits for it first). The message's offset
// is done with only once that step succeeded. If it fails, the message is projected again
// (Consumer.process), with the retries of any message: a transient failure is retried, a
// permanent one dead-letters the message; only when the lane's context ends (a rebalance or
// shutdown) is the message left undone, and then neither it nor any later message of the lane
// is marked done (the lane stops and the next owner redoes them).

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

// laneKey returns what a message's lane is chosen by: its aggregate (the aggregate_id header),
// else the record's key.
func laneKey(m kafka.Message) []byte {
	if key := []byte(header(m, headerAggregateID)); len(key) > 0 {
		return key
	}
	return m.Key
}

// runLane projects the messages of one lane in order until msgs is closed or a message cannot
// be done with (then it calls stop); finished is called with each message done with. The tail
// of a message (Consumer.process) runs beside the next message, unless that one is of the same
// aggregate, on a goroutine of the lane's own (one that lives as long as the lane, so that its
// stack, grown by the store client, is not grown again for every message); runLane returns
// only once the last tail has returned.
func (c *Consumer) runLane(gctx, lctx context.Context, stop func(), msgs <-chan kafka.Message, finished func(kafka.Message)) {
	type laneTail struct {
		m   kafka.Message
		run func() bool
	}
	tails, answers := make(chan laneTail), make(chan bool, 1)
	go func() {
		for t := range tails {
			ok := t.run()
			if ok {
				finished(t.m)
			}
			answers <- ok
		}
	}()
	var (
		running bool   // a tail runs; its answer comes on answers
		tailKey []byte // the running tail's aggregate
	)
	wait := func() bool { // waits for the running tail, if any; false when it failed
		if !running {
			return true
		}
		running, tailKey = false, nil
		return <-answers
	}
	defer close(tails)
	defer wait()
	for m := range msgs {
		key := laneKey(m)
		if running && bytes.Equal(key, tailKey) && !wait() {
			stop()
			return
		}
		// gctx too: lctx learns of the generation's end through a goroutine.
		if gctx.Err() != nil || lctx.Err() != nil {
			stop()
			return
		}
		ok, tail := c.process(lctx, m)
		if !wait() {
			stop()
			if tail != nil {
				tail() // fails or not, the lane stops: m is redone by whoever goes on
			}
			return
		}
		switch {
		case tail != nil:
			tails <- laneTail{m: m, run: tail}
			running, tailKey = true, key
		case ok:
			finished(m)
		default:
			stop()
			return
		}
	}
}
