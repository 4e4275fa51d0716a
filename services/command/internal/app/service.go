package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
)

// Defaults of Options.
const (
	// DefaultRetryBackoff is the first pause before deciding again after a lost race.
	DefaultRetryBackoff = 5 * time.Millisecond
	// DefaultMaxRetryBackoff caps the pause between two attempts.
	DefaultMaxRetryBackoff = 100 * time.Millisecond
	// DefaultSnapshotTimeout bounds one background snapshot write.
	DefaultSnapshotTimeout = 10 * time.Second
	// DefaultCacheSize is the number of aggregates a Service keeps in memory.
	DefaultCacheSize = 10000
)

// Attributes Handler.Execute sets on the caller's span (the gRPC server span of the call): the
// same keys as the relay's publish spans and the projector's spans, so a search by
// correlation_id finds one command's trace in every service.
const (
	// SpanAttrCorrelationID is the correlation id of the business request.
	SpanAttrCorrelationID = "correlation_id"
	// SpanAttrAggregateID is the aggregate the command addresses.
	SpanAttrAggregateID = "aggregate_id"
	// SpanAttrCommandID is the client's command id (set only when the request has one).
	SpanAttrCommandID = "command_id"
	// SpanAttrCausationID is the causation id of the events (the command id, or a fresh id).
	SpanAttrCausationID = "causation_id"
)

// tracerName names the tracer of the load, decide and append spans.
const tracerName = "github.com/ordersys/ordersys/services/command/internal/app"

// Options configure a Service. Every field is optional.
type Options struct {
	// SnapshotEvery takes a snapshot whenever an append crosses a multiple of it (0 disables).
	SnapshotEvery int
	// MaxRetries is how many times a command whose append lost a race is decided again when
	// the client set no expected version (0: never; the conflict is returned at once).
	MaxRetries int
	// RetryBackoff is the first pause before a retry; it grows by half each time, jittered by
	// ±50%, up to MaxRetryBackoff.
	RetryBackoff, MaxRetryBackoff time.Duration
	// SnapshotTimeout bounds one background snapshot write.
	SnapshotTimeout time.Duration
	// CacheSize is how many recently used aggregates are kept in memory, so that a command
	// reads only the events appended since its aggregate was last used (default
	// DefaultCacheSize; negative disables the cache).
	CacheSize int
	// MaxRememberedCommands bounds the command ids recorded per aggregate: recording one more
	// forgets the oldest (default es.DefaultMaxRememberedCommands).
	MaxRememberedCommands int
	// Rejections remembers rule rejections of commands that carry a command id; nil disables.
	Rejections RejectionLog
	// Metrics receives the command metrics; nil means unregistered ones.
	Metrics *Metrics
	// Logger receives failures of background work and, at debug, one line per command.
	Logger *slog.Logger
	// Now returns the decision time (default time.Now); it is truncated to the millisecond,
	// the precision the store keeps, so that in-memory and replayed states agree.
	Now func() time.Time
	// NewID returns fresh UUIDs for event ids, correlation and causation ids (default ids.New).
	NewID func() string
}

// Service executes commands against an es.EventStore. It is safe for concurrent use; the
// typed entry points are Handlers (see NewHandler, NewOrderHandler, NewCustomerHandler).
//
// Commands on one aggregate run one at a time per Service, in arrival order: concurrent
// requests for the same aggregate reaching the same process queue instead of racing each other
// through the store's conditional append (a Paxos round each on Cassandra, where contention
// costs far more than waiting). Races between processes are settled by the store and retried.
type Service struct {
	store  es.EventStore
	opts   Options
	tracer trace.Tracer
	bg     sync.WaitGroup
	locks  keyedMutex
	cache  *aggCache
}

// NewService returns a service appending to store.
func NewService(store es.EventStore, opts Options) *Service {
	if opts.MaxRetries < 0 {
		opts.MaxRetries = 0
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = DefaultRetryBackoff
	}
	if opts.MaxRetryBackoff < opts.RetryBackoff {
		opts.MaxRetryBackoff = max(DefaultMaxRetryBackoff, opts.RetryBackoff)
	}
	if opts.SnapshotTimeout <= 0 {
		opts.SnapshotTimeout = DefaultSnapshotTimeout
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.NewID == nil {
		opts.NewID = ids.New
	}
	if opts.MaxRememberedCommands <= 0 {
		opts.MaxRememberedCommands = es.DefaultMaxRememberedCommands
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = DefaultCacheSize
	}
	return &Service{store: store, opts: opts, tracer: otel.Tracer(tracerName), cache: newAggCache(opts.CacheSize)}
}

// Store returns the event store the service appends to.
func (s *Service) Store() es.EventStore { return s.store }

// Wait blocks until the background snapshot writes started so far are done, or ctx ends.
// Call it after the transport stopped accepting commands.
func (s *Service) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.bg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for background snapshots: %w", ctx.Err())
	}
}

// Meta is what the transport knows about the caller of a command.
type Meta struct {
	// CorrelationID ties together everything one business request caused; a new one is made
	// when empty.
	CorrelationID string
	// UserID is the authenticated user, as the layer in front of the service asserted it.
	UserID string
}

// Request is one command to execute against one aggregate.
type Request[C any] struct {
	// AggregateID is the target aggregate's UUID.
	AggregateID string
	// Command is the domain command.
	Command C
	// Name names the command kind for metrics, spans and event metadata, e.g. "CreateOrder".
	Name string
	// CommandID is the client's idempotency key (empty: none). It becomes the events'
	// causation id; a fresh one is made when empty.
	CommandID string
	// Fingerprint identifies the command's content, so that a command id reused for another
	// command is told apart from a repeat (es.ErrCommandIDReused).
	Fingerprint string
	// ExpectedVersion, when set, makes the command fail with an *es.ConflictError unless the
	// aggregate is at exactly that version; lost races are then not retried.
	ExpectedVersion *int64
	// Meta describes the caller.
	Meta Meta
}

// Result is the outcome of a command that succeeded (or of its first execution, for a repeat).
type Result struct {
	// AggregateID is the aggregate the command changed.
	AggregateID string
	// Version is the aggregate's version after the command.
	Version int64
	// EventIDs are the ids of the events the command appended, in sequence order.
	EventIDs []string
	// Duplicate is true when the command id had been executed before: nothing was appended
	// and the first outcome is returned.
	Duplicate bool
	// CorrelationID is the correlation id the events carry (the request's or a new one).
	CorrelationID string
}

// Decider is an aggregate that decides commands of type C: pkg/domain/order.Order and
// pkg/domain/customer.Customer.
type Decider[C any] interface {
	es.Aggregate
	// Decide returns the events cmd produces, without changing the aggregate.
	Decide(cmd C, now time.Time) ([]es.Event, error)
}

// Kind describes one aggregate kind to a Handler.
type Kind[A Decider[C], C any] struct {
	// AggregateType is the type recorded in envelopes and snapshots, e.g. "Order".
	AggregateType string
	// New returns the aggregate with the given id at version 0.
	New func(id string) A
	// Snapshots encodes and restores snapshots; nil disables them for this kind.
	Snapshots es.SnapshotCodec
	// Prepare completes a command with what Decide needs from outside its aggregate (an
	// order's Create gets its customer's standing); it runs on every attempt, so a retry sees
	// current data: after the command id was found new, except for a creation decided without
	// a read (Creates), whose id is checked by its batch. nil: nothing to add.
	Prepare func(ctx context.Context, cmd C) (C, error)
	// Creates reports whether cmd creates the aggregate: such a command is decided, on its
	// first attempt, on a new aggregate without reading the store (attemptAsNew). nil: none
	// does.
	Creates func(cmd C) bool
}

// Handler executes the commands of one aggregate kind.
type Handler[A Decider[C], C any] struct {
	svc  *Service
	kind Kind[A, C]
}

// NewHandler returns a handler of kind's commands running on svc.
func NewHandler[A Decider[C], C any](svc *Service, kind Kind[A, C]) *Handler[A, C] {
	return &Handler[A, C]{svc: svc, kind: kind}
}
