package relay

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/gocql/gocql"
	kafkago "github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/semaphore"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/grpcx"
)

// ProgressStore keeps, per aggregate, the last sequence published.
type ProgressStore interface {
	// Load returns the last sequence published of the aggregates of aggregateIDs (0: none), with
	// an entry for every id it read, also on an error (the ids it could not read have none).
	Load(ctx context.Context, aggregateIDs []string) (map[string]int64, error)
	// Save records each aggregate's sequence as the last one published; a sequence below the
	// one recorded changes nothing. On an error some may be saved: saving again is harmless.
	Save(ctx context.Context, seqs map[string]int64) error
}

// EventLoader reads committed events from event_store as stored.
type EventLoader interface {
	LoadRaw(ctx context.Context, aggregateID string, from, to int64) ([]es.Envelope, error)
}

// DeadLetterStore records messages that can never be published.
type DeadLetterStore interface {
	// Put records a dead letter under its id (a new one when zero), replacing one recorded
	// under it.
	Put(ctx context.Context, dl *cql.DeadLetter) error
	// Exists reports whether a dead letter is recorded under id for topic.
	Exists(ctx context.Context, topic string, id gocql.UUID) (bool, error)
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
	// Fence, when set, is asked right before each publish call whether this instance may still
	// publish (its lease's term has not run out, cql.Lease.Valid); when not, nothing is sent.
	Fence Fence
}

// Fence says whether the instance still holds the right to publish.
type Fence interface {
	Valid() bool
}

// ErrNotLeader is a record's error when the Fence stopped its publish call.
var ErrNotLeader = errors.New("not the lease holder any more: not published")

// Pipeline is the sequencer and publisher. It implements Sink. One Pipeline serves one
// leadership term: its in-memory state is only valid while no other instance publishes.
type Pipeline struct {
	cfg   Config
	d     Deps
	lanes []*lane
	slots *semaphore.Weighted // MaxInFlight: one per change submitted and not settled
	open  *outstanding        // changes submitted and not settled, for the lag metric
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
	p := &Pipeline{cfg: cfg, d: d, slots: semaphore.NewWeighted(int64(cfg.MaxInFlight)), open: newOutstanding()}
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
	removeLag := p.d.Metrics.addPipeline(p.open.oldest)
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
	removeLag()
	return ctx.Err()
}

// Submit hands a change to its aggregate's lane, blocking while MaxInFlight changes are
// unsettled.
func (p *Pipeline) Submit(ctx context.Context, c *Change) error {
	if err := p.slots.Acquire(ctx, 1); err != nil {
		return err
	}
	p.d.Metrics.InFlight.Inc()
	p.open.add(c)
	onDone := c.OnDone
	c.OnDone = func(o Outcome) {
		if p.open.done(c) {
			p.d.Metrics.InFlight.Dec()
		}
		p.slots.Release(1)
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
		p.slots.Release(1)
		return ctx.Err()
	}
}

// callsPerLane bounds the publish calls a lane has in flight at once (each holds at most one
// record per aggregate).
const callsPerLane = 8

// Budget of one ordinary publish call (within okafka.MaxCallRecords), and the most records of
// one aggregate sent together.
const (
	callRecords   = 500
	recordsPerAgg = 100
)

// traceparentShape has the length of every W3C traceparent of version 00.
const traceparentShape = "00-00000000000000000000000000000000-0000000000000000-00"

// deadLetterKind says why an entry goes to the dead-letter path; it is the kind label of the
// dead-letter metric.
type deadLetterKind string

// Kinds of dead letters. The first two mean an event breaks the shared envelope contract rather
// than a limit of the broker.
const (
	dlqUndecodable deadLetterKind = "undecodable" // the outbox row's envelope cannot be used
	dlqUnencodable deadLetterKind = "unencodable" // the event_store row cannot be encoded
	dlqTooLarge    deadLetterKind = "too_large"   // the record exceeds the broker's size limit
	dlqRefused     deadLetterKind = "refused"     // the broker refused the record sent alone
)

// DecodeReasons are the reasons the relay reports to its grpcx.DecodeWatch.
var DecodeReasons = []string{string(dlqUndecodable), string(dlqUnencodable)}
