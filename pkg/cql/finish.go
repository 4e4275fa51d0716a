package cql

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// DefaultFinishers is the default Options.Finishers.
const DefaultFinishers = 512

// finishTimeout bounds one background finish (the outbox rows, written at most twice, and the
// intents' deletion); past it the intents stay for recovery.
const finishTimeout = 30 * time.Second

// finishWorkers is the most background writers at once. Each takes every append queued while
// it was writing and finishes them together, so under load the rows of many appends go in one
// request and their intents in one request per minute bucket. A second writer starts only when
// finishBacklog appends wait (see startWorker): one writer that takes everything queued while it
// wrote sends far fewer requests than several that each take an append or two.
const finishWorkers = 4

// finishBacklog is the number of queued appends from which another writer starts beside those
// running: more than one writer's request can take (maxGroupRows rows) at a time is coming.
const finishBacklog = maxGroupRows / 2

// Limits of one group's batch: rows (events) and bytes of envelopes. An append larger than that
// is written alone, as one batch (as it always was; its rows are in one partition, which
// batch_size_fail_threshold does not limit). A group's batch spans partitions, so the store's
// batch_size_fail_threshold must exceed it: 1024 KiB here (deploy/local) and ScyllaDB's default.
const (
	maxGroupRows  = 128
	maxGroupBytes = 64 << 10
)

// finishJob is one committed append waiting for its outbox rows and its intent's deletion.
type finishJob struct {
	ctx context.Context // the append's (for its trace); its cancellation is ignored
	in  *intent
}

// finishers runs the last steps of committed appends in the background: a queue of at most n
// appends drained by up to finishWorkers workers that start when there is work and stop when
// there is none.
type finishers struct {
	queue  chan finishJob // nil: finish before Append returns
	active atomic.Int32   // workers running
	wg     sync.WaitGroup // appends queued and not yet finished
}

func newFinishers(n int) finishers {
	if n < 0 {
		return finishers{}
	}
	return finishers{queue: make(chan finishJob, n)}
}

// finishLater writes the committed intent's outbox rows and then deletes the intent, in the
// background when the queue has room, else at once (so a slow store slows the writers down
// instead of piling up work). Either way nothing is lost if it fails or the process dies
// meanwhile: the intent stays and recovery (RecoverIntents) writes the rows from it after its
// grace.
//
// Answering before the rows are written takes two of the four sequential round trips of an
// append off the command's latency: what the client waits for is the intent and the
// conditional batch. Writing the rows of the appends that finished meanwhile together takes
// most of the requests of those two steps off the store. The rows of a later append of the
// same aggregate may be written before this one's; the relay orders an aggregate's events by
// sequence and fills gaps from the event store, so it publishes them in order all the same.
func (st *EventStore) finishLater(ctx context.Context, in *intent) {
	f := &st.fin
	if f.queue == nil {
		st.finish(ctx, []*intent{in})
		return
	}
	f.wg.Add(1)
	select {
	case f.queue <- finishJob{ctx: ctx, in: in}:
	default:
		f.wg.Done()
		st.finish(ctx, []*intent{in})
		return
	}
	if f.startWorker() {
		go st.finishWorker()
	}
}

// startWorker counts one more worker when none is counted, or when finishBacklog appends are
// queued and fewer than finishWorkers are counted. Not starting one never strands a job: a
// counted worker looks at the queue again after it stopped counting itself (finishWorker), and
// the count was read after the job was queued.
func (f *finishers) startWorker() bool {
	if f.active.Load() > 0 && len(f.queue) < finishBacklog {
		return false // a counted worker will take the job
	}
	return f.reserve() // a worker counted meanwhile only means one more running than needed
}

// reserve counts one more worker unless finishWorkers are counted already; it never counts one
// too many, even for a moment, so a count at the limit always means that many workers that will
// still look at the queue before they stop.
func (f *finishers) reserve() bool {
	for {
		n := f.active.Load()
		if n >= finishWorkers {
			return false
		}
		if f.active.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// finishWorker finishes queued appends, those queued meanwhile together, until the queue is
// empty. A job queued while the last workers were stopping is never stranded: the one that
// queued it started a worker unless finishWorkers were counted (reserve), and each of those
// looks at the queue again after it stopped counting itself, taking a slot back if it finds a
// job (the last of them always can).
func (st *EventStore) finishWorker() {
	f := &st.fin
	for {
		select {
		case first := <-f.queue:
			group := []*intent{first.in}
		more:
			for len(group) < maxGroupRows {
				select {
				case j := <-f.queue:
					group = append(group, j.in)
				default:
					break more
				}
			}
			fctx, cancel := context.WithTimeout(context.WithoutCancel(first.ctx), finishTimeout)
			st.finish(fctx, group)
			cancel()
			f.wg.Add(-len(group))
		default:
			f.active.Add(-1)
			if len(f.queue) == 0 || !f.reserve() {
				return // nothing left, or finishWorkers others counted, each of which looks again
			}
		}
	}
}

// finish writes the outbox rows of committed intents, one unlogged batch for all their outbox
// shards (within the group limits), then deletes the intents whose rows were written, one
// unlogged batch per minute bucket of intents (at most OutboxShards partitions each). An
// intent whose rows or deletion failed stays for recovery.
//
// Neither batch needs atomicity: a batch answers success only once every one of its writes did,
// and on an error (some rows written, some not) every intent of the group stays, so recovery
// writes its rows again (the relay drops copies by event id). One request for the rows of every
// shard, instead of one per shard, is what makes writing the appends together pay: under load a
// few appends are queued at a time, spread over the eight shards.
func (st *EventStore) finish(ctx context.Context, ins []*intent) {
	groups := groupIntents(ins, func(*intent) any { return 0 })
	written := make([][]*intent, len(groups))
	var g errgroup.Group
	for i, group := range groups {
		g.Go(func() error {
			if err := st.writeOutbox(ctx, group); err == nil {
				written[i] = group
			}
			return nil
		})
	}
	_ = g.Wait()
	var done []*intent
	for _, w := range written {
		done = append(done, w...)
	}
	if len(done) == 0 {
		return
	}
	st.opts.Hook(StepOutboxWritten)
	for _, group := range groupIntents(done, func(in *intent) any { return in.bucket }) {
		g.Go(func() error { return st.deleteIntents(ctx, group) })
	}
	if g.Wait() == nil {
		st.opts.Hook(StepIntentSettled)
	}
}

// groupIntents splits intents by key (in their order within a key) into groups within the
// group limits; an intent over the limits alone is a group of its own.
func groupIntents(ins []*intent, key func(*intent) any) [][]*intent {
	type open struct {
		at          int // index in groups
		rows, bytes int
	}
	var groups [][]*intent
	opens := map[any]*open{}
	for _, in := range ins {
		rows, bytes := len(in.envelopes), 0
		for _, e := range in.envelopes {
			bytes += len(e)
		}
		k := key(in)
		o := opens[k]
		if o == nil || o.rows+rows > maxGroupRows || o.bytes+bytes > maxGroupBytes {
			o = &open{at: len(groups)}
			opens[k] = o
			groups = append(groups, nil)
		}
		groups[o.at] = append(groups[o.at], in)
		o.rows += rows
		o.bytes += bytes
	}
	return groups
}

// Close waits until the appends finishing in the background are done, or ctx ends (their
// intents then stay for recovery). Call it after the last Append, before closing the session.
func (st *EventStore) Close(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		st.fin.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
