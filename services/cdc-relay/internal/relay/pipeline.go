package relay

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/gocql/gocql"
	kafkago "github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/grpcx"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/telemetry"
)

// ProgressStore keeps, per aggregate, the last sequence published.
type ProgressStore interface {
	Load(ctx context.Context, aggregateID string) (int64, error)
	Save(ctx context.Context, aggregateID string, seq int64) error
}

// EventLoader reads committed events from event_store as stored.
type EventLoader interface {
	LoadRaw(ctx context.Context, aggregateID string, from, to int64) ([]es.Envelope, error)
}

// DeadLetterStore records messages that can never be published.
type DeadLetterStore interface {
	Put(ctx context.Context, dl *cql.DeadLetter) error
}

// Publisher sends records to the broker in one attempt, returning one error per record.
type Publisher interface {
	Publish(ctx context.Context, msgs []kafkago.Message) []error
	MaxMessageBytes() int
}

// Config tunes a Pipeline.
type Config struct {
	// Lanes is the number of goroutines that publish; each aggregate belongs to one lane
	// (default 8).
	Lanes int
	// MaxInFlight bounds the changes submitted and not yet settled (default 10000); Submit blocks
	// beyond it, so a broker outage stops the readers instead of filling memory.
	MaxInFlight int
	// RetryInitial and RetryMax bound the exponential backoff (with jitter) between attempts to
	// publish one aggregate's next event (defaults 100ms and 5s).
	RetryInitial, RetryMax time.Duration
	// FillChunk is the most events read from event_store at once to fill a gap (default 200).
	FillChunk int
	// TopicFor maps an aggregate type to its topic when a row names none (default
	// lower-case type + "-events").
	TopicFor func(aggregateType string) string
	// IdleAggregates is how many aggregates without pending work each lane keeps in memory to
	// drop duplicates without a store read (default 20000).
	IdleAggregates int
}

// Deps are the pipeline's collaborators.
type Deps struct {
	Progress    ProgressStore
	Events      EventLoader
	DeadLetters DeadLetterStore
	Publisher   Publisher
	Breaker     *Breaker
	Metrics     *Metrics
	Logger      *slog.Logger
	// Decode reports, loudly, rows whose envelope breaks the shared contract (nil: silent).
	Decode *grpcx.DecodeWatch
	// Tracer starts the publish spans (default: the global tracer provider's).
	Tracer trace.Tracer
}

// Pipeline is the sequencer and publisher. It implements Sink. One Pipeline serves one
// leadership term: its in-memory state is only valid while no other instance publishes.
type Pipeline struct {
	cfg   Config
	d     Deps
	lanes []*lane
	sem   chan struct{}
	open  *outstanding // changes submitted and not settled, for the lag metric
}

// NewPipeline returns a pipeline; call Run to start its lanes.
func NewPipeline(cfg Config, d Deps) *Pipeline {
	if cfg.Lanes <= 0 {
		cfg.Lanes = 8
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 10000
	}
	if cfg.RetryInitial <= 0 {
		cfg.RetryInitial = 100 * time.Millisecond
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 5 * time.Second
	}
	if cfg.FillChunk <= 0 {
		cfg.FillChunk = 200
	}
	if cfg.IdleAggregates <= 0 {
		cfg.IdleAggregates = 20000
	}
	if cfg.TopicFor == nil {
		cfg.TopicFor = DefaultTopicFor
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	if d.Breaker == nil {
		d.Breaker = NewBreaker(BreakerConfig{}, d.Metrics, d.Logger)
	}
	if d.Tracer == nil {
		d.Tracer = otel.Tracer("github.com/ordersys/ordersys/services/cdc-relay")
	}
	p := &Pipeline{cfg: cfg, d: d, sem: make(chan struct{}, cfg.MaxInFlight), open: newOutstanding()}
	d.Metrics.setOldestUnpublished(p.open.oldest)
	for i := 0; i < cfg.Lanes; i++ {
		p.lanes = append(p.lanes, &lane{p: p, id: i, in: make(chan *Change, 1024), results: make(chan *callResult, 1024),
			commits: make(chan []*flight, 64), aggs: map[string]*aggState{}, active: map[*aggState]struct{}{}})
	}
	return p
}

// DefaultTopicFor maps "Order" to "order-events".
func DefaultTopicFor(aggregateType string) string {
	b := []byte(aggregateType)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b) + "-events"
}

// Run runs the lanes until ctx ends.
func (p *Pipeline) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, l := range p.lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.run(ctx)
		}()
	}
	wg.Wait()
	// The term is over: what this pipeline still held is no longer in flight here, and its
	// lag is no longer this replica's (the next leader reads those rows again).
	p.d.Metrics.InFlight.Sub(float64(p.open.drain()))
	p.d.Metrics.setOldestUnpublished(nil)
	p.d.Metrics.CheckpointAge.Reset()
	return ctx.Err()
}

// Submit hands a change to its aggregate's lane, blocking while MaxInFlight changes are
// unsettled.
func (p *Pipeline) Submit(ctx context.Context, c *Change) error {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.d.Metrics.InFlight.Inc()
	p.open.add(c)
	onDone := c.OnDone
	c.OnDone = func(o Outcome) {
		if p.open.done(c) {
			p.d.Metrics.InFlight.Dec()
		}
		<-p.sem
		if onDone != nil {
			onDone(o)
		}
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(c.AggregateID))
	l := p.lanes[h.Sum32()%uint32(len(p.lanes))]
	select {
	case l.in <- c:
		return nil
	case <-ctx.Done():
		if p.open.done(c) {
			p.d.Metrics.InFlight.Dec()
		}
		<-p.sem
		return ctx.Err()
	}
}

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
	dlqReason   string // non-empty: never publishable, goes to the DLQ
	dlqKind     string // metric label: undecodable, too_large, unencodable
	dlqRecorded bool
	dlqID       gocql.UUID
	checked     bool // poison only: event_store was consulted
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

// callsPerLane bounds the publish calls a lane has in flight at once (each holds at most one
// record per aggregate).
const callsPerLane = 8

// lane owns a set of aggregates. Its goroutine does the sequencing and starts publish calls
// without waiting for them; results come back on results; the lane's committer writes
// publish_progress and settles the changes.
type lane struct {
	p            *Pipeline
	id           int
	in           chan *Change
	results      chan *callResult
	commits      chan []*flight
	ctx          context.Context
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
	l.ctx = ctx
	committerDone := make(chan struct{})
	go func() {
		defer close(committerDone)
		l.committer(ctx)
	}()
	defer func() { <-committerDone }()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		l.drain()
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
			l.apply(r)
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

// drain takes what is queued without blocking.
func (l *lane) drain() {
	for i := 0; i < 4096; i++ {
		select {
		case c := <-l.in:
			l.add(c)
		case r := <-l.results:
			l.apply(r)
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

// flight is one record of a publish call.
type flight struct {
	a      *aggState
	e      *entry
	dlq    bool
	poison bool // an unsequenced row (set when done): no progress to save
	span   trace.Span
}

// callResult is the outcome of one publish call, per flight.
type callResult struct {
	flights  []*flight
	errs     []error
	rejected bool // the breaker did not let the call through
}

// Budget of one ordinary publish call (within okafka.MaxCallRecords), and the most records of
// one aggregate sent together.
const (
	callRecords   = 500
	recordsPerAgg = 100
)

// round prepares the due work of the ready aggregates (progress, sequencing, gap filling) and
// starts publish calls: ordinary records packed into calls within the budget (all records of one
// aggregate in the same call, consecutive, so they go out in one produce request), dead letters
// and records that must be tried alone in calls of their own.
func (l *lane) round(ctx context.Context, ready []*aggState) {
	l.loadProgress(ctx, ready)
	maxBytes := l.p.d.Publisher.MaxMessageBytes()
	var batch, solo []*flight
	records, bytes := 0, 0
	flush := func() {
		if len(batch) > 0 {
			l.start(ctx, batch)
		}
		batch, records, bytes = nil, 0, 0
	}
	for _, a := range ready {
		es, err := l.prepare(ctx, a)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.p.d.Logger.Warn("relay: aggregate held back", "aggregate_id", a.id, "err", err)
			l.backOff(a)
			continue
		}
		if len(es) == 0 {
			continue
		}
		if es[0].dlqReason != "" || es[0].solo {
			solo = append(solo, &flight{a: a, e: es[0], dlq: es[0].dlqReason != ""})
			continue
		}
		// Keep as many of the aggregate's records as fit an empty call.
		n, size := 0, 0
		for _, e := range es {
			if n+1 > callRecords || size+e.size > maxBytes {
				break
			}
			n, size = n+1, size+e.size
		}
		if records+n > callRecords || bytes+size > maxBytes {
			flush()
		}
		for _, e := range es[:n] {
			batch = append(batch, &flight{a: a, e: e})
		}
		records, bytes = records+n, bytes+size
	}
	flush()
	for _, f := range solo {
		l.start(ctx, []*flight{f})
	}
}

// loadProgress reads, concurrently, the last published sequence of the aggregates seen for the
// first time.
func (l *lane) loadProgress(ctx context.Context, ready []*aggState) {
	var todo []*aggState
	for _, a := range ready {
		if !a.loaded {
			if !ids.Valid(a.id) {
				a.loaded = true // only poison can live here
				continue
			}
			todo = append(todo, a)
		}
	}
	if len(todo) == 0 {
		return
	}
	d := l.p.d
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, a := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if last, err := d.Progress.Load(ctx, a.id); err == nil {
				a.last, a.loaded = last, true
			}
		}()
	}
	wg.Wait()
}

// start runs a publish call in the background; its result comes back on l.results.
func (l *lane) start(ctx context.Context, flights []*flight) {
	for _, f := range flights {
		f.a.inFlight = true
	}
	l.calls++
	go func() { l.results <- l.call(ctx, flights) }()
}

func (l *lane) backOff(a *aggState) {
	a.retryAt = time.Now().Add(a.bo.NextBackOff())
}

// prepare drops what is already published, settles poison rows, fills a gap before the next
// event, and returns what to publish next: the run of consecutive entries from last+1 (at most
// recordsPerAgg), or a single entry that must go alone (a dead letter, a record to retry alone).
func (l *lane) prepare(ctx context.Context, a *aggState) ([]*entry, error) {
	d := l.p.d
	if !a.loaded {
		last, err := d.Progress.Load(ctx, a.id)
		if err != nil {
			d.Metrics.StoreErrors.WithLabelValues("load_progress").Inc()
			return nil, err
		}
		a.last, a.loaded = last, true
	}
	for seq, e := range a.pending {
		if seq <= a.last {
			for _, c := range e.changes {
				l.dropPublished(a, c)
			}
			delete(a.pending, seq)
		}
	}
	if err := l.resolveSuspects(ctx, a); err != nil {
		return nil, err
	}
	// Poison rows: a copy of a committed event in event_store replaces a broken outbox row;
	// anything else goes to the dead-letter path, one per round.
	for i := 0; i < len(a.poison); i++ {
		p := a.poison[i]
		if !p.checked && ids.Valid(a.id) && p.seq > 0 {
			envs, err := d.Events.LoadRaw(ctx, a.id, p.seq, p.seq)
			if err != nil {
				d.Metrics.StoreErrors.WithLabelValues("load_events").Inc()
				return nil, err
			}
			if len(envs) == 1 && (p.env.EventID == "" || envs[0].EventID == p.env.EventID) {
				if value, err := codec.MarshalEnvelope(envs[0]); err == nil {
					a.poison = append(a.poison[:i], a.poison[i+1:]...)
					i--
					if p.seq <= a.last {
						for _, c := range p.changes {
							d.Metrics.Duplicates.WithLabelValues(c.Cursor).Inc()
							c.settle(Duplicate)
						}
						continue
					}
					if e := a.pending[p.seq]; e != nil {
						e.changes = append(e.changes, p.changes...)
						continue
					}
					a.pending[p.seq] = l.newEntry(envs[0], value, p.topic, p.committed, p.changes)
					continue
				}
			}
		}
		p.checked = true
		return []*entry{p}, nil
	}
	if len(a.pending) == 0 {
		return nil, nil
	}
	next := a.last + 1
	if a.pending[next] == nil {
		first := int64(-1)
		var topic string
		for seq, e := range a.pending {
			if first < 0 || seq < first {
				first, topic = seq, e.topic
			}
		}
		to := min(first-1, next+int64(l.p.cfg.FillChunk)-1)
		envs, err := d.Events.LoadRaw(ctx, a.id, next, to)
		if err != nil {
			d.Metrics.StoreErrors.WithLabelValues("load_events").Inc()
			return nil, err
		}
		for _, env := range envs {
			if env.Sequence < next || env.Sequence > to || a.pending[env.Sequence] != nil {
				continue
			}
			value, err := codec.MarshalEnvelope(env)
			e := l.newEntry(env, value, topic, time.Time{}, nil)
			if err != nil {
				e.dlqReason, e.dlqKind = "event_store row cannot be encoded: "+err.Error(), dlqUnencodable
			}
			a.pending[env.Sequence] = e
			d.Metrics.GapFilled.Inc()
		}
		if a.pending[next] == nil {
			return nil, fmt.Errorf("sequence %d of %s is not in event_store yet (next outbox row has %d)", next, a.id, first)
		}
	}
	if e := a.pending[next]; e.dlqReason != "" || e.solo {
		return []*entry{e}, nil
	}
	run := []*entry{}
	for seq := next; len(run) < recordsPerAgg; seq++ {
		e := a.pending[seq]
		if e == nil || e.dlqReason != "" || e.solo {
			break
		}
		run = append(run, e)
	}
	return run, nil
}

// newEntry builds a pending entry; a record too large to publish is marked for the dead-letter
// path at once.
func (l *lane) newEntry(env es.Envelope, value []byte, topic string, committed time.Time, changes []*Change) *entry {
	e := &entry{seq: env.Sequence, env: env, value: value, topic: topic, committed: committed, changes: changes}
	// The traceparent header is rewritten at publish time with one of the same length.
	e.size = okafka.MessageSize(kafkago.Message{Key: []byte(env.AggregateID), Value: value,
		Headers: okafka.EnvelopeHeaders(env, traceparentShape, env.TraceState)})
	if max := l.p.d.Publisher.MaxMessageBytes(); e.size > max {
		e.dlqReason, e.dlqKind = fmt.Sprintf("%s: record of about %d bytes exceeds the limit of %d bytes",
			okafka.ErrMessageTooLarge, e.size, max), "too_large"
	}
	return e
}

// traceparentShape has the length of every W3C traceparent of version 00.
const traceparentShape = "00-00000000000000000000000000000000-0000000000000000-00"

// recordDeadLetter writes the dead letter's CQL record once.
func (l *lane) recordDeadLetter(ctx context.Context, e *entry) error {
	if e.dlqRecorded {
		return nil
	}
	dl := &cql.DeadLetter{Topic: e.topic, AggregateID: e.env.AggregateID, Sequence: e.seq, EventID: e.env.EventID,
		EventType: e.env.EventType, Reason: e.dlqReason, Envelope: e.value}
	if err := l.p.d.DeadLetters.Put(ctx, dl); err != nil {
		l.p.d.Metrics.StoreErrors.WithLabelValues("dead_letter").Inc()
		return err
	}
	e.dlqRecorded, e.dlqID = true, dl.ID
	if e.dlqKind == dlqUndecodable || e.dlqKind == dlqUnencodable {
		l.p.d.Decode.Undecodable(ctx, e.env.AggregateID, e.seq, e.env.EventID, e.dlqKind, e.topic+".dlq", errors.New(e.dlqReason))
	}
	return nil
}

// Kinds of dead letters (the metric label and entry.dlqKind) that mean an event breaks the
// shared envelope contract rather than a limit of the broker.
const (
	dlqUndecodable = "undecodable"
	dlqUnencodable = "unencodable"
)

// DecodeReasons are the reasons the relay reports to its grpcx.DecodeWatch.
var DecodeReasons = []string{dlqUndecodable, dlqUnencodable}

// message builds the record of a flight and starts its span.
func (l *lane) message(ctx context.Context, f *flight) kafkago.Message {
	e := f.e
	topic := e.topic
	if f.dlq {
		topic = okafka.DLQTopic(e.topic)
	}
	pctx := telemetry.ContextWithTraceContext(ctx, e.env.TraceParent, e.env.TraceState)
	sctx, span := l.p.d.Tracer.Start(pctx, topic+" publish", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "kafka"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", topic),
			attribute.String("messaging.kafka.message.key", e.env.AggregateID),
			attribute.String("ordersys.event_id", e.env.EventID),
			attribute.String("ordersys.event_type", e.env.EventType),
			attribute.Int64("ordersys.sequence", e.seq),
			attribute.Int("ordersys.attempt", e.attempts+1),
			// The same keys as the command service's and the projector's spans, so one search
			// by correlation_id finds the command's trace in every service.
			attribute.String("correlation_id", e.env.CorrelationID),
			attribute.String("causation_id", e.env.CausationID),
			attribute.String("aggregate_id", e.env.AggregateID),
		))
	f.span = span
	tp, ts := telemetry.TraceContextFromContext(sctx)
	if tp == "" {
		tp, ts = e.env.TraceParent, e.env.TraceState
	}
	msg := kafkago.Message{Topic: topic, Key: []byte(e.env.AggregateID), Value: e.value,
		Headers: okafka.EnvelopeHeaders(e.env, tp, ts)}
	if f.dlq {
		msg.Headers = append(msg.Headers,
			kafkago.Header{Key: okafka.HeaderDLQReason, Value: []byte(e.dlqReason)},
			kafkago.Header{Key: okafka.HeaderDLQSourceTopic, Value: []byte(e.topic)},
			kafkago.Header{Key: okafka.HeaderDLQID, Value: []byte(e.dlqID.String())})
		if okafka.MessageSize(msg) > l.p.d.Publisher.MaxMessageBytes() {
			msg.Value = nil
			msg.Headers = append(msg.Headers, kafkago.Header{Key: okafka.HeaderDLQValueOmitted, Value: []byte("true")})
		}
	}
	return msg
}

// call runs one publish call through the breaker (in its own goroutine: it touches only its
// flights' entries, which the lane leaves alone while they are in flight).
func (l *lane) call(ctx context.Context, flights []*flight) *callResult {
	d := l.p.d
	res := &callResult{flights: flights, errs: make([]error, len(flights))}
	var send []*flight
	var idx []int
	for i, f := range flights {
		if f.dlq {
			// The record in the store comes first: it keeps the full bytes and the reason.
			if err := l.recordDeadLetter(ctx, f.e); err != nil {
				res.errs[i] = fmt.Errorf("record dead letter: %w", err)
				continue
			}
		}
		send = append(send, f)
		idx = append(idx, i)
	}
	if len(send) == 0 {
		return res
	}
	allow, ok := d.Breaker.Allow()
	if !ok {
		d.Metrics.Failed.WithLabelValues("rejected").Add(float64(len(send)))
		res.rejected = true
		for _, i := range idx {
			res.errs[i] = ErrBrokerUnavailable
		}
		return res
	}
	msgs := make([]kafkago.Message, len(send))
	for j, f := range send {
		if f.e.attempts > 0 {
			d.Metrics.Retried.Inc()
		}
		msgs[j] = l.message(ctx, f)
	}
	errs := d.Publisher.Publish(ctx, msgs)
	var callErr error
	failedAll := true
	for j, f := range send {
		err := errs[j]
		res.errs[idx[j]] = err
		switch {
		case err == nil:
			failedAll = false
		case okafka.IsPermanent(err):
			failedAll = false // the record's own trouble, not the broker's
			f.span.RecordError(err)
			f.span.SetStatus(codes.Error, err.Error())
		default:
			if callErr == nil {
				callErr = err
			}
			f.span.RecordError(err)
			f.span.SetStatus(codes.Error, err.Error())
		}
		f.span.End()
	}
	if failedAll && callErr != nil && ctx.Err() == nil {
		allow(callErr)
	} else {
		allow(nil)
	}
	return res
}

// apply takes a call's outcome into the lane's state: acknowledged records advance their
// aggregate and go to the committer; failed ones are scheduled for retry or for the dead-letter
// path. An aggregate's records in a call are consecutive; once one fails, the later ones are
// not counted as published even if acknowledged (they went in the same produce request, so
// this does not happen; if it did, they would only be sent again).
func (l *lane) apply(r *callResult) {
	d := l.p.d
	l.calls--
	if r.rejected {
		l.blockedUntil = time.Now().Add(100 * time.Millisecond)
	}
	var done []*flight
	failed := map[*aggState]bool{}
	for i, f := range r.flights {
		a, e, err := f.a, f.e, r.errs[i]
		a.inFlight = false
		if err == nil && failed[a] {
			d.Logger.Warn("relay: record acknowledged after an earlier record of its aggregate failed in the same call; it will be sent again",
				"aggregate_id", a.id, "sequence", e.seq)
			continue
		}
		switch {
		case err == nil:
			a.bo.Reset()
			a.retryAt = time.Time{}
			if e.dlqKind == dlqUndecodable && !isSequenced(a, e) {
				// A poison row is not part of the stream: progress stays.
				f.poison = true
				for k, p := range a.poison {
					if p == e {
						a.poison = append(a.poison[:k], a.poison[k+1:]...)
						break
					}
				}
			} else {
				if e.seq > a.last {
					a.remember(e.seq, e.env.EventID)
					a.last = e.seq
				}
				delete(a.pending, e.seq)
			}
			done = append(done, f)
		case r.rejected:
			// Not an attempt: the breaker is open.
		case okafka.IsPermanent(err) && !f.dlq:
			failed[a] = true
			e.attempts++
			d.Metrics.Failed.WithLabelValues("permanent").Inc()
			switch {
			case errors.Is(err, okafka.ErrMessageTooLarge):
				e.dlqReason, e.dlqKind = err.Error(), "too_large"
			case e.solo:
				e.dlqReason, e.dlqKind = "refused by the broker: "+err.Error(), "refused"
			default:
				e.solo = true // a batch may have been refused because of another record
			}
		default:
			if !failed[a] {
				l.backOff(a)
			}
			failed[a] = true
			e.attempts++
			d.Metrics.Failed.WithLabelValues("transient").Inc()
			d.Logger.Debug("relay: publish failed, will retry", "aggregate_id", a.id, "sequence", e.seq, "attempt", e.attempts, "err", err)
		}
	}
	if len(done) > 0 {
		select {
		case l.commits <- done:
		case <-l.ctx.Done():
		}
	}
}

// committer writes publish_progress for acknowledged records (only after the broker's
// acknowledgement, in order per aggregate) and then settles their outbox changes.
func (l *lane) committer(ctx context.Context) {
	d := l.p.d
	for {
		var done []*flight
		select {
		case <-ctx.Done():
			return
		case done = <-l.commits:
		}
	more:
		for len(done) < 4096 {
			select {
			case x := <-l.commits:
				done = append(done, x...)
			default:
				break more
			}
		}
		latest := map[string]int64{}
		for _, f := range done {
			if f.poison {
				continue
			}
			if f.e.seq > latest[f.a.id] {
				latest[f.a.id] = f.e.seq
			}
		}
		if !l.saveProgress(ctx, latest) {
			return
		}
		for _, f := range done {
			e := f.e
			if f.dlq {
				d.Metrics.DeadLettered.WithLabelValues(e.topic, e.dlqKind).Inc()
				d.Logger.Warn("relay: dead-lettered", "topic", e.topic, "aggregate_id", e.env.AggregateID, "sequence", e.seq,
					"event_id", e.env.EventID, "dead_letter_id", e.dlqID.String(), "reason", e.dlqReason)
				for _, c := range e.changes {
					c.settle(DeadLettered)
				}
				continue
			}
			d.Metrics.observePublished(e.topic, e.committed)
			for _, c := range e.changes {
				c.settle(Published)
			}
		}
	}
}

// saveProgress writes the given last sequences, retrying failures until they succeed or ctx
// ends (a store outage: nothing is settled meanwhile).
func (l *lane) saveProgress(ctx context.Context, latest map[string]int64) bool {
	d := l.p.d
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = 50*time.Millisecond, 5*time.Second
	for len(latest) > 0 {
		var mu sync.Mutex
		failed := map[string]int64{}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for id, seq := range latest {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				if err := d.Progress.Save(ctx, id, seq); err != nil {
					mu.Lock()
					failed[id] = seq
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		latest = failed
		if len(latest) > 0 {
			d.Metrics.StoreErrors.WithLabelValues("save_progress").Add(float64(len(latest)))
			select {
			case <-ctx.Done():
				return false
			case <-time.After(bo.NextBackOff()):
			}
		}
	}
	return true
}

// isSequenced says whether e is the aggregate's pending entry at its sequence (not a poison row).
func isSequenced(a *aggState, e *entry) bool { return a.pending[e.seq] == e }
