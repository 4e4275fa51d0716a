package relay

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/es"
)

// entry is one event of an aggregate waiting to be published (or dead-lettered).
type entry struct {
	seq       int64
	env       es.Envelope // decoded envelope (payload left encoded)
	value     []byte      // the record value: the envelope bytes
	topic     string
	committed time.Time
	changes   []*Change // outbox changes settled with this entry (none for gap fills)
	attempts  int
	solo      bool // publish alone (a broker size refusal inside a batch must be confirmed)
	size      int  // upper bound of the record's size

	// Dead-letter path.
	dlqReason    string // non-empty: never publishable, goes to the DLQ
	dlqKind      deadLetterKind
	dlqChecked   bool       // checkDeadLetter ran: dlqID and dlqEarlier are set
	dlqID        gocql.UUID // the outbox row's id when known
	dlqEarlier   bool       // dead-lettered (sent and recorded) by an earlier reading of the same outbox row
	dlqPublished bool       // on the dead-letter topic; only its record is left to write
	dlqRecorded  bool
	checked      bool // poison only: event_store was consulted
}

// aggState is a lane's view of one aggregate.
type aggState struct {
	id       string
	loaded   bool
	last     int64
	pending  map[int64]*entry
	poison   []*entry     // rows whose envelope cannot be used as it is; not sequenced
	suspects []*Change    // rows whose event id must be compared with event_store (see divergent.go)
	recent   []gocql.UUID // event ids published at the last sequences, up to last
	retryAt  time.Time
	bo       *backoff.ExponentialBackOff
	lastUsed time.Time
	inFlight bool // a record of this aggregate is being published
}

func (a *aggState) busy() bool { return len(a.pending) > 0 || len(a.poison) > 0 || len(a.suspects) > 0 }

// lane owns a set of aggregates. Its goroutine does the sequencing and starts publish calls
// without waiting for them; results come back on results; the lane's committer writes
// publish_progress and settles the changes.
type lane struct {
	p            *Pipeline
	id           int
	in           chan *Change
	results      chan *callResult
	commits      chan []*flight
	calls        int
	aggs         map[string]*aggState
	active       map[*aggState]struct{}
	blockedUntil time.Time
	lastSweep    time.Time
}

func (l *lane) state(id string) *aggState {
	a := l.aggs[id]
	if a == nil {
		bo := &backoff.ExponentialBackOff{InitialInterval: l.p.cfg.RetryInitial, RandomizationFactor: 0.5,
			Multiplier: 2, MaxInterval: l.p.cfg.RetryMax}
		bo.Reset()
		a = &aggState{id: id, pending: map[int64]*entry{}, bo: bo}
		l.aggs[id] = a
	}
	a.lastUsed = time.Now()
	return a
}

func (l *lane) run(ctx context.Context) {
	committerDone := make(chan struct{})
	go func() {
		defer close(committerDone)
		l.committer(ctx)
	}()
	defer func() { <-committerDone }()
	defer l.awaitCalls()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		l.drain(ctx)
		now := time.Now()
		l.sweep(now)
		var ready []*aggState
		wake := time.Hour
		if l.calls < callsPerLane {
			ready, wake = l.ready(now)
		}
		if len(ready) > 0 {
			l.round(ctx, ready)
			continue
		}
		timer.Reset(wake)
		select {
		case c := <-l.in:
			l.add(c)
		case r := <-l.results:
			l.apply(ctx, r)
		case <-timer.C:
		case <-ctx.Done():
			return
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// awaitCalls waits for the publish calls still running, dropping their results (the next term
// reads those rows again): a term ends, and its lease is released, only once its produce
// requests were answered or failed (each is bounded by the publisher's write timeout), so a
// shard handed over has no request of its old owner still on its way.
func (l *lane) awaitCalls() {
	for ; l.calls > 0; l.calls-- {
		<-l.results
	}
}

// drain takes what is queued without blocking.
func (l *lane) drain(ctx context.Context) {
	for i := 0; i < 4096; i++ {
		select {
		case c := <-l.in:
			l.add(c)
		case r := <-l.results:
			l.apply(ctx, r)
		default:
			return
		}
	}
}

// ready returns the aggregates with work due now and how long to wait otherwise.
func (l *lane) ready(now time.Time) ([]*aggState, time.Duration) {
	wake := time.Hour
	if now.Before(l.blockedUntil) {
		return nil, l.blockedUntil.Sub(now)
	}
	var out []*aggState
	for a := range l.active {
		if !a.busy() {
			delete(l.active, a)
			continue
		}
		if a.inFlight {
			continue
		}
		if a.retryAt.After(now) {
			wake = min(wake, a.retryAt.Sub(now))
			continue
		}
		out = append(out, a)
		if len(out) >= 512 {
			break
		}
	}
	return out, max(wake, time.Millisecond)
}

// sweep forgets idle aggregates beyond the configured number.
func (l *lane) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < 10*time.Second || len(l.aggs) <= l.p.cfg.IdleAggregates {
		return
	}
	l.lastSweep = now
	for id, a := range l.aggs {
		if len(l.aggs) <= l.p.cfg.IdleAggregates*3/4 {
			return
		}
		if !a.busy() && !a.inFlight && now.Sub(a.lastUsed) > time.Minute {
			delete(l.aggs, id)
		}
	}
}

// add files a change under its aggregate.
func (l *lane) add(c *Change) {
	a := l.state(c.AggregateID)
	l.active[a] = struct{}{}
	topic := c.Topic
	if topic == "" {
		topic = l.p.cfg.TopicFor(c.AggregateType)
	}
	if a.loaded && c.Sequence <= a.last && c.Sequence > 0 {
		l.dropPublished(a, c)
		return
	}
	env, err := codec.UnmarshalEnvelope(c.Envelope)
	if err == nil {
		err = env.CheckRow(c.AggregateID, c.Sequence, c.EventID)
	}
	if err != nil {
		a.poison = append(a.poison, &entry{seq: c.Sequence, topic: topic, value: c.Envelope, committed: c.CommittedAt,
			changes: []*Change{c}, dlqReason: "undecodable envelope: " + err.Error(), dlqKind: dlqUndecodable,
			env: es.Envelope{AggregateID: c.AggregateID, AggregateType: c.AggregateType, Sequence: c.Sequence, EventID: c.EventID}})
		return
	}
	if e := a.pending[c.Sequence]; e != nil {
		if e.env.EventID != env.EventID {
			// Two rows, two events, one sequence: compared with event_store once it is published.
			a.suspects = append(a.suspects, c)
			return
		}
		e.changes = append(e.changes, c)
		if e.committed.IsZero() || (!c.CommittedAt.IsZero() && c.CommittedAt.Before(e.committed)) {
			e.committed = c.CommittedAt
		}
		return
	}
	a.pending[c.Sequence] = l.newEntry(env, c.Envelope, topic, c.CommittedAt, []*Change{c})
}
