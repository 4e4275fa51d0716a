package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/check"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

// Defaults of Options.
const (
	// DefaultPageSize is the page size of a list request that asks for 0.
	DefaultPageSize = 20
	// MaxPageSize caps the page size of list requests.
	MaxPageSize = 100
	// DefaultMinPoll is the first pause between two reads while waiting for a version.
	DefaultMinPoll = 10 * time.Millisecond
	// DefaultMaxPoll caps the pause between two reads while waiting for a version.
	DefaultMaxPoll = 100 * time.Millisecond
	// DefaultMaxWait bounds a wait for a version when the call has no deadline.
	DefaultMaxWait = 10 * time.Second
	// DefaultDeadlineMargin is how long before the call's deadline a wait gives up, so that the
	// client receives the server's explanation rather than its own timeout.
	DefaultDeadlineMargin = 50 * time.Millisecond
)

// tracerName names the tracer of the use-case spans.
const tracerName = "github.com/ordersys/ordersys/services/query/internal/app"

// ReadModel is the port to the projected read models (implemented by *readmodel.Store). Errors match es.ErrNotFound for a missing row, es.ErrInvalidArgument for a bad
// id or page token, es.ErrUnavailable when the database does not answer.
type ReadModel interface {
	// GetOrder returns the order's row.
	GetOrder(ctx context.Context, orderID string) (readmodel.Order, error)
	// ListOrdersByCustomer returns a page of the customer's orders, newest first.
	ListOrdersByCustomer(ctx context.Context, customerID string, pageSize int, pageToken string) (readmodel.Page, error)
	// ListOrdersByStatus returns a page of the orders in the status, newest first.
	ListOrdersByStatus(ctx context.Context, status order.Status, pageSize int, pageToken string) (readmodel.Page, error)
	// GetCustomer returns the customer's state as projected.
	GetCustomer(ctx context.Context, customerID string) (*customer.Customer, error)
}

// Options configure a Service. Every field is optional.
type Options struct {
	// DefaultPageSize is used when a list request asks for 0 entries (default DefaultPageSize).
	DefaultPageSize int
	// MaxPageSize caps the entries of one page (default MaxPageSize).
	MaxPageSize int
	// MinPoll and MaxPoll bound the pause between two reads of the read model while waiting
	// for a version; the pause doubles from MinPoll up to MaxPoll.
	MinPoll, MaxPoll time.Duration
	// MaxWait bounds a wait for a version when the call has no deadline.
	MaxWait time.Duration
	// DeadlineMargin is how long before the call's deadline a wait gives up.
	DeadlineMargin time.Duration
	// Snapshots restores order snapshots (default codec.SnapshotCodecs()[order.AggregateType]).
	Snapshots es.SnapshotCodec
	// Metrics receives the query metrics; nil means unregistered ones.
	Metrics *Metrics
	// Logger receives, at debug level, snapshots that could not be used.
	Logger *slog.Logger
}

// Service runs the queries. It is safe for concurrent use.
type Service struct {
	rm     ReadModel
	store  es.EventStore
	opts   Options
	tracer trace.Tracer
}

// NewService returns a service reading rm and store.
func NewService(rm ReadModel, store es.EventStore, opts Options) *Service {
	if opts.DefaultPageSize <= 0 {
		opts.DefaultPageSize = DefaultPageSize
	}
	if opts.MaxPageSize <= 0 {
		opts.MaxPageSize = MaxPageSize
	}
	opts.DefaultPageSize = min(opts.DefaultPageSize, opts.MaxPageSize)
	if opts.MinPoll <= 0 {
		opts.MinPoll = DefaultMinPoll
	}
	if opts.MaxPoll < opts.MinPoll {
		opts.MaxPoll = max(DefaultMaxPoll, opts.MinPoll)
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = DefaultMaxWait
	}
	if opts.DeadlineMargin <= 0 {
		opts.DeadlineMargin = DefaultDeadlineMargin
	}
	if opts.Snapshots == nil {
		opts.Snapshots = codec.SnapshotCodecs()[order.AggregateType]
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Service{rm: rm, store: store, opts: opts, tracer: otel.Tracer(tracerName)}
}

// checkID returns the canonical form of an id request field (ids.Canonical), or a validation
// error naming it: the same rule the command service applied when the id was written.
func checkID(field, s string) (string, error) {
	id := ids.Canonical(s)
	var v es.Violations
	if !check.UUID(&v, field, id) {
		return "", v.Err()
	}
	return id, nil
}

// endSpan records err (if any) on the span and ends it. An answer about the request (bad
// input, not found, a version that does not exist) is recorded as an event, not as a failure
// of the span.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		if !errors.Is(err, es.ErrInvalidArgument) && !errors.Is(err, es.ErrNotFound) && !errors.Is(err, es.ErrRuleViolation) {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}
