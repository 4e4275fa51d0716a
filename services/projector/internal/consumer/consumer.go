// Package consumer is the projector's Kafka side (kafka-go): the consumer group member that
// projects the messages of its partitions through an app.Handler (app.Consumers), its metrics
// and stall reports, and the dead-letter writer of <topic>.projector.dlq.
//
// A Consumer processes each partition in order (each aggregate on one lane, keylanes.go) and
// hands each decoded event to the projection's handler, retrying transient failures; a poison
// message goes to <topic>.projector.dlq. Offsets are committed only after the read-model
// writes.
package consumer

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/grpcx"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/telemetry"
	"github.com/ordersys/ordersys/services/projector/internal/app"
)

// tracerName is the instrumentation scope of the projector's spans.
const tracerName = "github.com/ordersys/ordersys/services/projector"

// Config configures a Consumer.
type Config struct {
	// Kafka is the cluster read from.
	Kafka okafka.Cluster
	// GroupID is the consumer group; each projection version has its own (app.GroupID).
	GroupID string
	// Topics are the topics consumed.
	Topics []string
	// Projection and Version name what is built (labels of metrics and spans).
	Projection string
	// Version is the table version written.
	Version int
	// Handler applies the events.
	Handler app.Handler
	// Registry decodes and upcasts event payloads.
	Registry *es.Registry
	// DeadLetters receives poison messages.
	DeadLetters *DeadLetters
	// Metrics receives the counters (required).
	Metrics *Metrics
	// Decode reports, loudly, messages that cannot be decoded (nil: only the dead letter).
	Decode *grpcx.DecodeWatch
	// Logger receives progress and failures (default slog.Default()).
	Logger *slog.Logger
	// CommitInterval is how often processed offsets are committed (default 250ms; they are
	// committed only once the message's read-model writes are done).
	CommitInterval time.Duration
	// RetryBackoff is the first pause before retrying a transient failure (default 100ms,
	// doubled up to MaxRetryBackoff).
	RetryBackoff time.Duration
	// MaxRetryBackoff caps the pause between retries (default 5s).
	MaxRetryBackoff time.Duration
	// StallAfter is how long one message may keep failing before its partition counts as
	// stalled (ordersys_projector_partition_stalled, health service HealthServiceProgress); default 30s,
	// so a stall shows within StallAfter + 1.5 × MaxRetryBackoff.
	StallAfter time.Duration
	// Stalls receives the stalled partitions for the health service (nil: metric only).
	Stalls *Stalls
	// KeyLanes is how many messages of one partition are projected at once, each key (aggregate)
	// on one lane in partition order (default DefaultKeyLanes; keylanes.go).
	KeyLanes int
}

// Consumer is a member of a consumer group that projects the messages of its partitions: each
// partition on goroutines of its own (so a slow or retried partition does not hold the others
// back), each aggregate's messages in partition order (keylanes.go), committing a message's offset only after its read-model writes (or its dead
// letter) are done. A partition's worker stops as soon as the group's generation ends (a
// rebalance may give the partition to another member), and the member rejoins only once every
// worker has stopped (group.go).
type Consumer struct {
	cfg    Config
	tracer trace.Tracer
	labels []string
	stalls stallCounts
	dlq    deadLetterSender // cfg.DeadLetters (a fake in tests)
}

// deadLetterSender sends a poison message to its dead-letter topic and records it
// (DeadLetters).
type deadLetterSender interface {
	Publish(ctx context.Context, projection string, m kafka.Message, reason string, cause error) error
	Record(ctx context.Context, projection string, m kafka.Message, reason string, cause error) error
}

// New returns a consumer; Run starts it.
func New(cfg Config) *Consumer {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = 250 * time.Millisecond
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = 100 * time.Millisecond
	}
	if cfg.MaxRetryBackoff <= 0 {
		cfg.MaxRetryBackoff = 5 * time.Second
	}
	if cfg.StallAfter <= 0 {
		cfg.StallAfter = DefaultStallAfter
	}
	if cfg.KeyLanes <= 0 {
		cfg.KeyLanes = DefaultKeyLanes
	}
	cfg.Logger = cfg.Logger.With("projection", cfg.Projection, "version", cfg.Version, "group", cfg.GroupID)
	return &Consumer{
		cfg:    cfg,
		tracer: otel.Tracer(tracerName),
		labels: []string{cfg.Projection, strconv.Itoa(cfg.Version)},
		dlq:    cfg.DeadLetters,
	}
}

// Runner implements app.Consumers: it runs a Consumer per spec on shared dependencies.
type Runner struct {
	// Kafka is the cluster read from.
	Kafka okafka.Cluster
	// Registry decodes and upcasts event payloads.
	Registry *es.Registry
	// DeadLetters receives poison messages.
	DeadLetters *DeadLetters
	// Metrics receives the counters (required).
	Metrics *Metrics
	// Decode reports, loudly, messages that cannot be decoded (nil: only the dead letter).
	Decode *grpcx.DecodeWatch
	// Logger receives progress and failures (default slog.Default()).
	Logger *slog.Logger
	// Stalls receives the stalled partitions for the health service (nil: metric only).
	Stalls *Stalls
}

var _ app.Consumers = Runner{}

// Run runs the consumer spec describes until ctx ends (Consumer.Run).
func (r Runner) Run(ctx context.Context, spec app.ConsumerSpec) error {
	return New(Config{
		Kafka:          r.Kafka,
		GroupID:        spec.GroupID,
		Topics:         spec.Topics,
		Projection:     spec.Projection,
		Version:        spec.Version,
		Handler:        spec.Handler,
		Registry:       r.Registry,
		DeadLetters:    r.DeadLetters,
		Metrics:        r.Metrics,
		Decode:         r.Decode,
		Logger:         r.Logger,
		CommitInterval: spec.CommitInterval,
		StallAfter:     spec.StallAfter,
		Stalls:         r.Stalls,
	}).Run(ctx)
}

// process projects one message, retrying transient failures until ctx ends. It returns true
// when the message is done with (applied, duplicate or dead-lettered) and may be committed; or,
// when the handler left the last step of the message to run beside the next messages
// (app.Finisher), a tail that does it and says the same: the message is not done with before
// the tail has returned true, and the aggregate's next message must wait for it.
func (c *Consumer) process(ctx context.Context, m kafka.Message) (done bool, tail func() bool) {
	eventType := header(m, headerEventType)
	pctx := telemetry.ContextWithTraceContext(ctx, header(m, headerTraceParent), header(m, headerTraceState))
	pctx, span := c.tracer.Start(pctx, "projector "+c.cfg.Projection+" "+orUnknown(eventType),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "kafka"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", m.Topic),
			attribute.String("messaging.consumer.group.name", c.cfg.GroupID),
			attribute.Int("messaging.destination.partition.id", m.Partition),
			attribute.Int64("messaging.kafka.offset", m.Offset),
			attribute.String("projection", c.cfg.Projection),
			attribute.Int("projection.version", c.cfg.Version),
			attribute.String("event_type", eventType),
			attribute.String("aggregate_id", header(m, headerAggregateID)),
			attribute.String("correlation_id", header(m, headerCorrelationID)),
			attribute.String("sequence", header(m, headerSequence)),
		))

	env, err := c.decode(pctx, m)
	if err != nil {
		defer span.End()
		reason, ok := app.IsPoison(err)
		if !ok {
			span.SetStatus(codes.Error, "stopped before the message was decoded")
			return false, nil // ctx ended while the key store did not answer
		}
		return c.deadLetter(pctx, span, m, reason, err), nil
	}
	span.SetAttributes(
		attribute.String("event_type", env.EventType),
		attribute.String("aggregate_id", env.AggregateID),
		attribute.String("correlation_id", env.CorrelationID),
		attribute.Int64("sequence", env.Sequence),
	)
	stall := c.stallWatch(m)
	finish := func(res app.Result, err error) bool {
		defer span.End()
		stall.done()
		if err == nil {
			c.record(pctx, span, env, res)
			return true
		}
		if reason, ok := app.IsPoison(err); ok {
			return c.deadLetter(pctx, span, m, reason, err)
		}
		span.SetStatus(codes.Error, "stopped before the message was projected")
		return false // ctx ended: the only way out of the retries
	}
	project := func() (app.Result, error) { return c.cfg.Handler.Project(pctx, env) }
	var then func(context.Context) error
	if f, ok := c.cfg.Handler.(app.Finisher); ok {
		project = func() (app.Result, error) {
			res, next, err := f.ProjectThen(pctx, env)
			then = next
			return res, err
		}
	}
	res, err := c.retry(ctx, pctx, span, m, env, stall, nil, project)
	if err != nil || then == nil {
		return finish(res, err), nil
	}
	return false, func() bool {
		// The metrics count what the write did (res), not the retry's re-projection below,
		// which is a duplicate.
		terr := then(pctx)
		if terr != nil {
			// Projecting the message again redoes what then did (the row is at its version);
			// a permanent failure dead-letters the message, the end of ctx leaves it undone.
			_, terr = c.retry(ctx, pctx, span, m, env, stall, terr, func() (app.Result, error) {
				return c.cfg.Handler.Project(pctx, env)
			})
		}
		return finish(res, terr)
	}
}

// retry calls project until it succeeds, fails permanently (poison) or ctx ends, pausing after
// each transient failure; failed, when not nil, is a failure that happened before the first
// call (it counts, and is paused after, as one).
func (c *Consumer) retry(ctx, pctx context.Context, span trace.Span, m kafka.Message, env es.Envelope, stall *stallWatch,
	failed error, project func() (app.Result, error)) (app.Result, error) {
	return backoff.Retry(ctx, func() (app.Result, error) {
		var res app.Result
		err := failed
		if failed != nil {
			failed = nil
		} else {
			res, err = project()
		}
		if err = app.Classify(err); err != nil {
			if _, ok := app.IsPoison(err); ok {
				return res, backoff.Permanent(err)
			}
		}
		return res, err
	}, c.retryOptions(func(err error, next time.Duration) {
		c.cfg.Logger.WarnContext(pctx, "projection failed, retrying", "topic", m.Topic, "partition", m.Partition,
			"offset", m.Offset, "event", env.String(), "retry_in", next, "err", err)
		span.AddEvent("retry", trace.WithAttributes(attribute.String("error", err.Error())))
		stall.failed()
	})...)
}

// retryOptions retries a transient failure with exponential backoff (RetryBackoff doubled up to
// MaxRetryBackoff, jittered) until it succeeds, fails permanently or ctx ends; notify is called
// before each pause, after the retry was counted.
func (c *Consumer) retryOptions(notify func(error, time.Duration)) []backoff.RetryOption {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.Multiplier = c.cfg.RetryBackoff, c.cfg.MaxRetryBackoff, 2
	return []backoff.RetryOption{
		backoff.WithBackOff(b),
		backoff.WithMaxElapsedTime(0), // transient means: it will pass; the stall watch makes it visible
		backoff.WithNotify(func(err error, next time.Duration) {
			c.cfg.Metrics.Retries.WithLabelValues(c.labels...).Inc()
			notify(err, next)
		}),
	}
}

// decode turns a message into a decoded envelope; failures are poison, but for the key store
// not answering (the personal data of a Customer event is opened through customer_keys), which
// is retried until it answers or ctx ends.
func (c *Consumer) decode(ctx context.Context, m kafka.Message) (es.Envelope, error) {
	env, err := codec.UnmarshalEnvelope(m.Value)
	if err != nil {
		return es.Envelope{}, app.Poison(app.ReasonUndecodable, err)
	}
	// The contract the event store checked before storing the event (and the relay before
	// publishing it): a message that breaks it was not written by this system's writer.
	if err := env.Check(); err != nil {
		return es.Envelope{}, app.Poison(app.ReasonUndecodable, err)
	}
	_, err = backoff.Retry(ctx, func() (struct{}, error) {
		err := c.cfg.Registry.DecodeEnvelopeContext(ctx, &env)
		if err != nil && !errors.Is(err, es.ErrUnavailable) {
			return struct{}{}, backoff.Permanent(app.Poison(app.ReasonUnknownEvent, err))
		}
		return struct{}{}, err
	}, c.retryOptions(func(err error, next time.Duration) {
		c.cfg.Logger.WarnContext(ctx, "decode failed, retrying", "event", env.String(), "retry_in", next, "err", err)
	})...)
	if err != nil {
		return es.Envelope{}, err // poison, or ctx ended
	}
	return env, nil
}

func (c *Consumer) record(ctx context.Context, span trace.Span, env es.Envelope, res app.Result) {
	if res.Duplicate {
		c.cfg.Metrics.Duplicates.WithLabelValues(c.labels...).Inc()
		span.SetAttributes(attribute.Bool("duplicate", true))
		c.cfg.Logger.DebugContext(ctx, "duplicate skipped", "event", env.String())
		return
	}
	if res.Healed > 0 {
		c.cfg.Metrics.GapsHealed.WithLabelValues(c.labels...).Inc()
		c.cfg.Metrics.HealedEvents.WithLabelValues(c.labels...).Add(float64(res.Healed))
		span.SetAttributes(attribute.Int("healed_events", res.Healed))
		c.cfg.Logger.InfoContext(ctx, "gap healed from the event store", "event", env.String(), "healed", res.Healed)
	}
	for _, t := range res.Applied {
		c.cfg.Metrics.Applied.WithLabelValues(c.labels[0], c.labels[1], t).Inc()
	}
	if !env.OccurredAt.IsZero() {
		c.cfg.Metrics.EventLag.WithLabelValues(c.labels...).Observe(time.Since(env.OccurredAt).Seconds())
	}
}

// deadLetter sends a poison message to the DLQ and records it in the dead_letters table,
// retrying each until ctx ends (a dead letter too large for the topic is sent without its
// value, see DeadLetters.Publish); it returns true once the message may be committed: published
// and recorded.
func (c *Consumer) deadLetter(ctx context.Context, span trace.Span, m kafka.Message, reason string, cause error) bool {
	span.SetStatus(codes.Error, cause.Error())
	span.SetAttributes(attribute.String("dlq_reason", reason))
	c.cfg.Logger.ErrorContext(ctx, "poison message sent to the dead-letter topic", "topic", m.Topic, "partition", m.Partition,
		"offset", m.Offset, "aggregate_id", header(m, headerAggregateID), "sequence", header(m, headerSequence),
		"event_id", header(m, headerEventID), "reason", reason, "err", cause)
	stall := c.stallWatch(m)
	published := false
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		if !published {
			if err := c.dlq.Publish(ctx, c.cfg.Projection, m, reason, cause); err != nil {
				return struct{}{}, err
			}
			published = true // sending it again would not help: only the record is retried
		}
		return struct{}{}, c.dlq.Record(ctx, c.cfg.Projection, m, reason, cause)
	}, c.retryOptions(func(err error, next time.Duration) {
		c.cfg.Logger.WarnContext(ctx, "dead letter not done, retrying", "published", published, "err", err, "retry_in", next)
		stall.failed()
	})...)
	stall.done()
	if err != nil {
		// ctx ended, the only way out of the retries: m stays uncommitted, and whoever handles
		// it next publishes it again (the DLQ tolerates a repeat) and records it.
		return false
	}
	// Counted once done: a dead letter cut short is handled, and counted, again by the next owner.
	if reason == app.ReasonUndecodable || reason == app.ReasonUnknownEvent {
		seq, _ := strconv.ParseInt(header(m, headerSequence), 10, 64)
		c.cfg.Decode.Undecodable(ctx, header(m, headerAggregateID), seq, header(m, headerEventID), reason, DLQTopic(m.Topic), cause)
	}
	c.cfg.Metrics.DeadLetters.WithLabelValues(c.labels[0], c.labels[1], reason).Inc()
	return true
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
