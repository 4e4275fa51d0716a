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
	"github.com/ordersys/ordersys/pkg/es"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/telemetry"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/store"
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
	Put(ctx context.Context, dl *store.DeadLetter) error
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
	p := &Pipeline{cfg: cfg, d: d, sem: make(chan struct{}, cfg.MaxInFlight)}
	for i := 0; i < cfg.Lanes; i++ {
		p.lanes = append(p.lanes, &lane{p: p, id: i, in: make(chan *Change, 1024), aggs: map[string]*aggState{}, active: map[*aggState]struct{}{}})
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
	onDone := c.OnDone
	c.OnDone = func(o Outcome) {
		<-p.sem
		p.d.Metrics.InFlight.Dec()
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
		<-p.sem
		p.d.Metrics.InFlight.Dec()
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
	poison   []*entry // rows whose envelope cannot be used as it is; not sequenced
	retryAt  time.Time
	bo       *backoff.ExponentialBackOff
	lastUsed time.Time
}

func (a *aggState) busy() bool { return len(a.pending) > 0 || len(a.poison) > 0 }

type lane struct {
	p            *Pipeline
	id           int
	in           chan *Change
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
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		l.drain()
		now := time.Now()
		l.sweep(now)
		ready, wake := l.ready(now)
		if len(ready) == 0 {
			timer.Reset(wake)
			select {
			case c := <-l.in:
				l.add(c)
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
			continue
		}
		l.round(ctx, ready)
	}
}

// drain takes what is queued without blocking.
func (l *lane) drain() {
	for i := 0; i < 4096; i++ {
		select {
		case c := <-l.in:
			l.add(c)
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
		if !a.busy() && now.Sub(a.lastUsed) > time.Minute {
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
		l.p.d.Metrics.Duplicates.WithLabelValues(c.Cursor).Inc()
		c.settle(Duplicate)
		return
	}
	env, err := codec.UnmarshalEnvelope(c.Envelope)
	if err == nil {
		err = matches(env, c)
	}
	if err != nil {
		a.poison = append(a.poison, &entry{seq: c.Sequence, topic: topic, value: c.Envelope, committed: c.CommittedAt,
			changes: []*Change{c}, dlqReason: "undecodable envelope: " + err.Error(), dlqKind: "undecodable",
			env: es.Envelope{AggregateID: c.AggregateID, AggregateType: c.AggregateType, Sequence: c.Sequence, EventID: c.EventID}})
		return
	}
	if e := a.pending[c.Sequence]; e != nil {
		e.changes = append(e.changes, c)
		if e.committed.IsZero() || (!c.CommittedAt.IsZero() && c.CommittedAt.Before(e.committed)) {
			e.committed = c.CommittedAt
		}
		return
	}
	a.pending[c.Sequence] = &entry{seq: c.Sequence, env: env, value: c.Envelope, topic: topic, committed: c.CommittedAt, changes: []*Change{c}}
}

// matches checks that an envelope is the event its outbox row says it is.
func matches(env es.Envelope, c *Change) error {
	switch {
	case c.Sequence <= 0:
		return fmt.Errorf("row sequence %d", c.Sequence)
	case !isUUID(c.AggregateID):
		return fmt.Errorf("row aggregate id %q is not a UUID", c.AggregateID)
	case env.AggregateID != c.AggregateID, env.Sequence != c.Sequence:
		return fmt.Errorf("envelope is %s#%d, row says %s#%d", env.AggregateID, env.Sequence, c.AggregateID, c.Sequence)
	case c.EventID != "" && env.EventID != c.EventID:
		return fmt.Errorf("envelope event id %s, row says %s", env.EventID, c.EventID)
	case env.EventType == "" || env.SchemaVersion < 1:
		return fmt.Errorf("envelope without event type or schema version")
	}
	return nil
}

func isUUID(s string) bool {
	u, err := gocql.ParseUUID(s)
	return err == nil && u != (gocql.UUID{})
}

// flight is one record of a publish call.
type flight struct {
	a    *aggState
	e    *entry
	dlq  bool
	span trace.Span
}

// round does the due work of the ready aggregates: sequencing, gap filling, one publish call,
// progress, settling.
func (l *lane) round(ctx context.Context, ready []*aggState) {
	var batch, solo []*flight
	for _, a := range ready {
		e, err := l.prepare(ctx, a)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.p.d.Logger.Warn("relay: aggregate held back", "aggregate_id", a.id, "err", err)
			l.backOff(a)
			continue
		}
		if e == nil {
			continue
		}
		f := &flight{a: a, e: e, dlq: e.dlqReason != ""}
		if e.solo || f.dlq {
			solo = append(solo, f)
		} else {
			batch = append(batch, f)
		}
	}
	var done []*flight
	if len(batch) > 0 {
		done = append(done, l.publish(ctx, batch)...)
	}
	for _, f := range solo {
		if f.dlq {
			if !l.recordDeadLetter(ctx, f) {
				continue
			}
		}
		done = append(done, l.publish(ctx, []*flight{f})...)
	}
	l.finish(ctx, done)
}

func (l *lane) backOff(a *aggState) {
	a.retryAt = time.Now().Add(a.bo.NextBackOff())
}

// prepare loads the aggregate's progress, drops what is already published, settles poison rows,
// fills a gap before the next event, and returns the entry to publish next (nil: none now).
func (l *lane) prepare(ctx context.Context, a *aggState) (*entry, error) {
	d := l.p.d
	if !a.loaded {
		if !isUUID(a.id) {
			a.loaded = true // only poison can live here
		} else {
			last, err := d.Progress.Load(ctx, a.id)
			if err != nil {
				d.Metrics.StoreErrors.WithLabelValues("load_progress").Inc()
				return nil, err
			}
			a.last, a.loaded = last, true
		}
	}
	for seq, e := range a.pending {
		if seq <= a.last {
			for _, c := range e.changes {
				d.Metrics.Duplicates.WithLabelValues(c.Cursor).Inc()
				c.settle(Duplicate)
			}
			delete(a.pending, seq)
		}
	}
	// Poison rows: a copy of a committed event in event_store replaces a broken outbox row;
	// anything else goes to the dead-letter path, one per round.
	for i := 0; i < len(a.poison); i++ {
		p := a.poison[i]
		if !p.checked && isUUID(a.id) && p.seq > 0 {
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
					a.pending[p.seq] = &entry{seq: p.seq, env: envs[0], value: value, topic: p.topic, committed: p.committed, changes: p.changes}
					continue
				}
			}
		}
		p.checked = true
		return p, nil
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
			e := &entry{seq: env.Sequence, env: env, topic: topic}
			if e.value, err = codec.MarshalEnvelope(env); err != nil {
				e.dlqReason, e.dlqKind = "event_store row cannot be encoded: "+err.Error(), "unencodable"
			}
			a.pending[env.Sequence] = e
			d.Metrics.GapFilled.Inc()
		}
		if a.pending[next] == nil {
			return nil, fmt.Errorf("sequence %d of %s is not in event_store yet (next outbox row has %d)", next, a.id, first)
		}
	}
	return a.pending[next], nil
}

// recordDeadLetter writes the dead letter's CQL record once; false when it failed.
func (l *lane) recordDeadLetter(ctx context.Context, f *flight) bool {
	e := f.e
	if e.dlqRecorded {
		return true
	}
	dl := &store.DeadLetter{Topic: e.topic, AggregateID: e.env.AggregateID, Sequence: e.seq, EventID: e.env.EventID,
		EventType: e.env.EventType, Reason: e.dlqReason, Envelope: e.value}
	if err := l.p.d.DeadLetters.Put(ctx, dl); err != nil {
		l.p.d.Metrics.StoreErrors.WithLabelValues("dead_letter").Inc()
		l.p.d.Logger.Warn("relay: cannot record dead letter", "aggregate_id", e.env.AggregateID, "sequence", e.seq, "err", err)
		l.backOff(f.a)
		return false
	}
	e.dlqRecorded, e.dlqID = true, dl.ID
	return true
}

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

// publish sends one call through the breaker and returns the flights that are done (acked, or
// acked on the dead-letter topic). Failed ones are scheduled for retry or for the dead-letter
// path.
func (l *lane) publish(ctx context.Context, flights []*flight) []*flight {
	d := l.p.d
	allow, ok := d.Breaker.Allow()
	if !ok {
		d.Metrics.Failed.WithLabelValues("rejected").Add(float64(len(flights)))
		l.blockedUntil = time.Now().Add(100 * time.Millisecond)
		return nil
	}
	msgs := make([]kafkago.Message, len(flights))
	for i, f := range flights {
		if f.e.attempts > 0 {
			d.Metrics.Retried.Inc()
		}
		msgs[i] = l.message(ctx, f)
	}
	errs := d.Publisher.Publish(ctx, msgs)
	var callErr error
	failedAll := true
	var done []*flight
	for i, f := range flights {
		err := errs[i]
		f.e.attempts++
		switch {
		case err == nil:
			failedAll = false
			f.span.End()
			done = append(done, f)
		case okafka.IsPermanent(err) && !f.dlq:
			failedAll = false
			d.Metrics.Failed.WithLabelValues("permanent").Inc()
			f.span.RecordError(err)
			f.span.SetStatus(codes.Error, err.Error())
			f.span.End()
			switch {
			case errors.Is(err, okafka.ErrMessageTooLarge):
				f.e.dlqReason, f.e.dlqKind = err.Error(), "too_large"
			case f.e.solo:
				f.e.dlqReason, f.e.dlqKind = "refused by the broker: "+err.Error(), "refused"
			default:
				f.e.solo = true
			}
		default:
			if okafka.IsPermanent(err) {
				failedAll = false // the dead letter itself is refused: retried below, not a broker outage
			} else if callErr == nil {
				callErr = err
			}
			d.Metrics.Failed.WithLabelValues("transient").Inc()
			f.span.RecordError(err)
			f.span.SetStatus(codes.Error, err.Error())
			f.span.End()
			if ctx.Err() == nil {
				d.Logger.Debug("relay: publish failed, will retry", "aggregate_id", f.a.id, "sequence", f.e.seq, "attempt", f.e.attempts, "err", err)
			}
			l.backOff(f.a)
		}
	}
	if failedAll && callErr != nil && ctx.Err() == nil {
		allow(callErr)
	} else {
		allow(nil)
	}
	return done
}

// finish advances the aggregates past the acknowledged events, saves their progress, and settles
// the outbox changes.
func (l *lane) finish(ctx context.Context, done []*flight) {
	if len(done) == 0 {
		return
	}
	d := l.p.d
	type save struct {
		id  string
		seq int64
	}
	var saves []save
	for _, f := range done {
		a, e := f.a, f.e
		a.bo.Reset()
		a.retryAt = time.Time{}
		if e.dlqKind == "undecodable" && !isSequenced(a, e) {
			// A poison row is not part of the stream: progress stays.
			for i, p := range a.poison {
				if p == e {
					a.poison = append(a.poison[:i], a.poison[i+1:]...)
					break
				}
			}
			continue
		}
		if e.seq > a.last {
			a.last = e.seq
		}
		delete(a.pending, e.seq)
		saves = append(saves, save{a.id, a.last})
	}
	// Progress is written only after the broker's acknowledgement; a failure here is a store
	// outage: retry until it works or the term ends.
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = 50*time.Millisecond, 5*time.Second
	for len(saves) > 0 {
		var mu sync.Mutex
		var failed []save
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for _, s := range saves {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				if err := d.Progress.Save(ctx, s.id, s.seq); err != nil {
					mu.Lock()
					failed = append(failed, s)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		saves = failed
		if len(saves) > 0 {
			d.Metrics.StoreErrors.WithLabelValues("save_progress").Add(float64(len(saves)))
			select {
			case <-ctx.Done():
				return
			case <-time.After(bo.NextBackOff()):
			}
		}
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

// isSequenced says whether e is the aggregate's pending entry at its sequence (not a poison row).
func isSequenced(a *aggState, e *entry) bool { return a.pending[e.seq] == e }
