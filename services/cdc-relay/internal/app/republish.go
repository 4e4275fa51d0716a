package app

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	kafkago "github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
)

// Defaults of a re-publication.
const (
	// DefaultRepublishRate bounds the events published per second when the request sets none.
	DefaultRepublishRate = 1000
	// republishPage is how many aggregates one page of the token walk lists.
	republishPage = 100
	// republishWorkers is how many aggregates of a page are read and published at once (each
	// one's events in order by one worker), as many as the publisher has calls in flight.
	republishWorkers = 16
	// republishCheckpointPrefix names a job's walk position (cql.EventStore.WalkAggregates).
	republishCheckpointPrefix = "republish:"
)

// RepublishRequest says what to publish again from the event store.
type RepublishRequest struct {
	// Job names the run; its position is saved under this name, so running the same job again
	// resumes after the last aggregate it finished.
	Job string
	// Topic receives every event; empty means each aggregate type's configured topic.
	Topic string
	// Rate bounds the events published per second (0: DefaultRepublishRate).
	Rate int
	// AggregateIDs, when set, limits the run to these aggregates (no token walk, no position).
	AggregateIDs []string
	// PageSize is how many aggregates a page of the walk lists, the unit of saved progress
	// (0: 100).
	PageSize int
}

// RepublishProgress is reported after each page of aggregates.
type RepublishProgress struct {
	// Aggregates and Events done so far in this run.
	Aggregates, Events int64
	// Fraction of the token ring walked (0 to 1), the basis of ETA.
	Fraction float64
	// Rate is the events per second so far; ETA the estimated time left.
	Rate float64
	ETA  time.Duration
	// Done is set on the last report.
	Done bool
}

// Republish publishes the events of the event store again (every aggregate, in token order, or
// the chosen ones), each aggregate's events in sequence order with the usual key and headers,
// at most req.Rate events a second. The job's position is saved after each page, so a run that
// was stopped (or crashed) resumes where it was; an aggregate whose page was not finished is
// published again, duplicates that consumers drop by sequence. progress is called after each
// page and at the end.
func (a *Admin) Republish(ctx context.Context, events *cql.EventStore, req RepublishRequest, progress func(RepublishProgress)) error {
	if err := a.checkRepublish(req); err != nil {
		return err
	}
	rate := req.Rate
	if rate <= 0 {
		rate = DefaultRepublishRate
	}
	r := &republisher{a: a, events: events, req: req, interval: time.Second / time.Duration(rate), start: time.Now(), progress: progress}
	if err := r.ensureTopic(ctx); err != nil {
		return err
	}
	if len(req.AggregateIDs) > 0 {
		for _, id := range req.AggregateIDs {
			if err := r.aggregate(ctx, ids.Canonical(id)); err != nil {
				return err
			}
			r.count(1)
		}
		r.report(1, 0, true)
		return nil
	}
	err := events.WalkAggregates(ctx, republishCheckpointPrefix+req.Job, cmp.Or(req.PageSize, republishPage), func(page cql.WalkPage) error {
		if err := r.page(ctx, page.IDs); err != nil {
			return err
		}
		r.report(page.Fraction, page.Start, false)
		return nil
	})
	if err != nil {
		return err
	}
	r.report(1, 0, true)
	return nil
}

func (a *Admin) checkRepublish(req RepublishRequest) error {
	var v es.Violations
	switch {
	case req.Job == "" && len(req.AggregateIDs) == 0:
		v.Add("job", "is required (it names the run, so that it can resume)")
	case strings.ContainsAny(req.Job, " \t\n"):
		v.Add("job", "must not contain spaces")
	}
	if req.Rate < 0 {
		v.Addf("rate_per_second", "must not be negative, got %d", req.Rate)
	}
	for i, id := range req.AggregateIDs {
		if !ids.Valid(ids.Canonical(id)) {
			v.Addf(fmt.Sprintf("aggregate_ids[%d]", i), "%s, got %q", ids.Reason, id)
		}
	}
	return v.Err()
}

// republisher is one run of Republish.
type republisher struct {
	a        *Admin
	events   *cql.EventStore
	req      RepublishRequest
	interval time.Duration
	start    time.Time
	progress func(RepublishProgress)

	mu   sync.Mutex // guards next and done (the page's workers share them)
	next time.Time
	done RepublishProgress
}

// ensureTopic creates the target topic (or the configured event topics) when missing.
func (r *republisher) ensureTopic(ctx context.Context) error {
	cfg := r.a.cfg
	topics := []string{cfg.OrderTopic, cfg.CustomerTopic}
	if r.req.Topic != "" {
		topics = []string{r.req.Topic}
	}
	var specs []okafka.TopicSpec
	for _, t := range topics {
		specs = append(specs, okafka.EventTopic(t, cfg.Partitions, cfg.ReplicationFactor, cfg.RetentionMs))
	}
	if err := okafka.EnsureTopics(ctx, r.a.pub.Cluster(), specs...); err != nil {
		return fmt.Errorf("%w: topics %v: %w", es.ErrUnavailable, topics, err)
	}
	return nil
}

// republishChunk is how many events of one aggregate go out in one publish call: a call is
// retried whole, so a long stream is sent (and paced) a chunk at a time.
const republishChunk = 500

// batch is one publish call's records, whole aggregates each in sequence order.
type batch struct {
	msgs   []kafkago.Message
	labels []string // aggregate#sequence of each record, for errors
	bytes  int
}

func (b *batch) add(o batch) {
	b.msgs, b.labels, b.bytes = append(b.msgs, o.msgs...), append(b.labels, o.labels...), b.bytes+o.bytes
}

// page publishes a page's aggregates. Their events are read republishWorkers aggregates at a
// time and sent in calls of up to republishChunk records and the publisher's size limit,
// republishWorkers calls at once; each aggregate's events are in one call, in sequence order,
// so another aggregate's may interleave and its own never reorder (a failed call is sent again
// whole: duplicates, never a reordering). An aggregate too large for one call is sent alone, a
// chunk at a time (aggregate). The page is done when every call was acknowledged.
func (r *republisher) page(ctx context.Context, ids []string) error {
	loaded := make([]*batch, len(ids)) // nil: too large for one call
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(republishWorkers)
	for i, id := range ids {
		g.Go(func() error {
			envs, err := r.events.LoadRaw(gctx, id, 1, republishChunk)
			if err != nil || len(envs) == republishChunk {
				return err
			}
			b, err := r.messages(envs)
			if err == nil && b.bytes <= r.a.pub.MaxMessageBytes() {
				loaded[i] = &b
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(republishWorkers)
	var call batch
	flush := func() {
		if len(call.msgs) > 0 {
			c := call
			g.Go(func() error { return r.send(gctx, c) })
		}
		call = batch{}
	}
	for i, b := range loaded {
		if b == nil {
			g.Go(func() error { return r.aggregate(gctx, ids[i]) })
			continue
		}
		if len(call.msgs)+len(b.msgs) > republishChunk || call.bytes+b.bytes > r.a.pub.MaxMessageBytes() {
			flush()
		}
		call.add(*b)
	}
	flush()
	if err := g.Wait(); err != nil {
		return err
	}
	r.count(len(ids))
	return nil
}

// count adds n aggregates done.
func (r *republisher) count(n int) {
	r.mu.Lock()
	r.done.Aggregates += int64(n)
	r.mu.Unlock()
}

// aggregate publishes every event of one aggregate, in sequence order, a chunk at a time, within
// the rate (the caller counts it done).
func (r *republisher) aggregate(ctx context.Context, id string) error {
	for from := int64(1); ; from += republishChunk {
		envs, err := r.events.LoadRaw(ctx, id, from, from+republishChunk-1)
		if err != nil {
			return err
		}
		if len(envs) == 0 {
			break
		}
		b, err := r.messages(envs)
		if err != nil {
			return err
		}
		if err := r.send(ctx, b); err != nil {
			return err
		}
		if len(envs) < republishChunk {
			break
		}
	}
	return nil
}

// messages builds the records of consecutive events of one aggregate.
func (r *republisher) messages(envs []es.Envelope) (batch, error) {
	b := batch{msgs: make([]kafkago.Message, 0, len(envs)), labels: make([]string, 0, len(envs))}
	for _, env := range envs {
		value, err := codec.MarshalEnvelope(env)
		if err != nil {
			return b, fmt.Errorf("re-publish %s: %w", env, err)
		}
		topic := r.req.Topic
		if topic == "" {
			topic = r.a.cfg.TopicFor(env.AggregateType)
		}
		m := kafkago.Message{Topic: topic, Key: []byte(env.AggregateID), Value: value,
			Headers: okafka.EnvelopeHeaders(env, env.TraceParent, env.TraceState)}
		b.msgs = append(b.msgs, m)
		b.labels = append(b.labels, fmt.Sprintf("%s#%d", env.AggregateID, env.Sequence))
		b.bytes += okafka.MessageSize(m)
	}
	return b, nil
}

// send publishes a batch in one call, retried whole, then waits what the rate asks for.
func (r *republisher) send(ctx context.Context, b batch) error {
	publish := func() (struct{}, error) {
		for i, err := range r.a.pub.Publish(ctx, b.msgs) {
			if err != nil {
				err = fmt.Errorf("re-publish %s: %w", b.labels[i], err)
				if okafka.IsPermanent(err) {
					return struct{}{}, backoff.Permanent(err)
				}
				return struct{}{}, err
			}
		}
		return struct{}{}, nil
	}
	if _, err := backoff.Retry(ctx, publish, backoff.WithBackOff(backoff.NewExponentialBackOff()),
		backoff.WithMaxElapsedTime(time.Minute)); err != nil {
		return fmt.Errorf("%w: %w", es.ErrUnavailable, err)
	}
	r.mu.Lock()
	r.done.Events += int64(len(b.msgs))
	if r.next.IsZero() {
		r.next = time.Now()
	}
	r.next = r.next.Add(time.Duration(len(b.msgs)) * r.interval)
	wait := time.Until(r.next)
	r.mu.Unlock()
	if wait > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	return nil
}

// report sends the progress so far; start is the fraction of the ring where this run began.
func (r *republisher) report(fraction, start float64, done bool) {
	if r.progress == nil {
		return
	}
	r.mu.Lock()
	p := r.done
	r.mu.Unlock()
	p.Fraction, p.Done = fraction, done
	if el := time.Since(r.start); el > 0 {
		p.Rate = float64(p.Events) / el.Seconds()
		if walked := fraction - start; walked > 0 && fraction < 1 {
			p.ETA = time.Duration(float64(el) * (1 - fraction) / walked).Round(time.Second)
		}
	}
	r.progress(p)
}
