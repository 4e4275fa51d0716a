package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

// Result says what projecting one message did.
type Result struct {
	// Duplicate is set when the message's sequence was already applied; nothing was written.
	Duplicate bool
	// Healed is the number of events read from the event store to fill a gap before it.
	Healed int
	// Applied lists the event types applied, healed ones first.
	Applied []string
}

// Handler projects the decoded events of aggregate streams into one version of a projection.
// Project is called for the events of one aggregate in the order of its partition; it applies
// an event only when its sequence is the next one of the read-model row, skips a sequence already
// applied, and fills a gap from the event store first. A failure that retrying cannot fix is a
// *PoisonError; any other error is transient (the caller retries the same message).
type Handler interface {
	// Project applies one decoded envelope.
	Project(ctx context.Context, env es.Envelope) (Result, error)
}

// StreamHandler is a Handler that also takes several consecutive events of one aggregate at
// once (a rebuild from the event store reads them so): the same projection code, with one read
// and one write of the row for the whole run of events instead of one per event.
type StreamHandler interface {
	Handler
	// ProjectStream applies envs, decoded events of one aggregate, dense and in sequence order;
	// those already applied are skipped (Result.Duplicate when all of them were).
	ProjectStream(ctx context.Context, envs []es.Envelope) (Result, error)
}

// Finisher is a Handler that can hand back the last step of projecting a message, a check that
// reads what other writers may have changed meanwhile (OrdersHandler: the customer details
// re-read after an order write), so that the caller may run it while it goes on with the next
// messages of other aggregates instead of waiting for it.
type Finisher interface {
	Handler
	// ProjectThen does what Project does up to that check and returns the check as then (nil
	// when nothing is left to do). The message is done with only once then has returned nil;
	// if then fails, the message must be projected again (Project redoes the check). The
	// caller must not project the aggregate's next event before then has returned.
	ProjectThen(ctx context.Context, env es.Envelope) (res Result, then func(ctx context.Context) error, err error)
}

// RowKeeper is a handler that keeps read-model rows in memory between events (OrdersHandler).
// The consumer calls ForgetRows when a group generation starts, before any of its workers:
// another member may have written those rows while this one did not own their partitions.
type RowKeeper interface {
	ForgetRows()
}

// EventSource reads stored events to heal gaps (pkg/cql.EventStore implements it).
type EventSource interface {
	// LoadRange returns the decoded events of the aggregate with from ≤ sequence ≤ to.
	LoadRange(ctx context.Context, aggregateID string, from, to int64) ([]es.Envelope, error)
}

// Poison reasons: the dlq_reason header and the reason label of ordersys_projector_dead_letters_total.
const (
	// ReasonUndecodable: the message value is not an orders.v1.EventEnvelope.
	ReasonUndecodable = "undecodable"
	// ReasonUnknownEvent: the event type or schema version is unknown, or its payload is corrupt.
	ReasonUnknownEvent = "unknown_event"
	// ReasonForeignAggregate: the event belongs to an aggregate type the projection does not hold.
	ReasonForeignAggregate = "foreign_aggregate"
	// ReasonUnappliable: the aggregate refused the event (history that does not replay).
	ReasonUnappliable = "unappliable"
	// ReasonGapUnhealable: the events before it are missing from (or unreadable in) the event store.
	ReasonGapUnhealable = "gap_unhealable"
	// ReasonUnreadableRow: the aggregate's read-model row cannot be decoded.
	ReasonUnreadableRow = "unreadable_row"
)

// Classify decides, once for every handler, whether an error is permanent (a *PoisonError:
// retrying gives the same answer) or transient (store or broker unavailable, timeouts).
func Classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.As(err, new(*PoisonError)):
		return err
	case errors.Is(err, readmodel.ErrUnreadableRow):
		return Poison(ReasonUnreadableRow, err)
	case errors.Is(err, readmodel.ErrNoState), errors.Is(err, es.ErrInvalidArgument):
		return Poison(ReasonUnappliable, err)
	}
	return err
}

// PoisonError is a message that can never be projected: it goes to the DLQ and the partition
// moves on.
type PoisonError struct {
	// Reason is one of the Reason constants.
	Reason string
	// Err is the cause.
	Err error
}

// Error describes the failure.
func (e *PoisonError) Error() string { return e.Reason + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *PoisonError) Unwrap() error { return e.Err }

// Poison returns a *PoisonError of reason (one of the Reason constants) caused by err.
func Poison(reason string, err error) error { return &PoisonError{Reason: reason, Err: err} }

// IsPoison reports whether err is a *PoisonError and returns its reason.
func IsPoison(err error) (string, bool) {
	var pe *PoisonError
	if errors.As(err, &pe) {
		return pe.Reason, true
	}
	return "", false
}

// healer fills gaps from the event store.
type healer struct {
	src EventSource
	// attempts bounds how often a short read is retried before the gap counts as unhealable.
	attempts int
	// backoff is the first pause between attempts (doubled each time).
	backoff time.Duration
}

// load returns the events from..to of the aggregate, all of them and dense. Infrastructure
// errors are returned as they are (transient); a stored event that cannot be decoded, or events
// still missing after the retries, are poison.
func (h healer) load(ctx context.Context, aggregateID string, from, to int64) ([]es.Envelope, error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.Multiplier, b.RandomizationFactor = h.backoff, 2, 0
	return backoff.Retry(ctx, func() ([]es.Envelope, error) {
		envs, err := h.src.LoadRange(ctx, aggregateID, from, to)
		switch {
		case err != nil && (errors.Is(err, es.ErrUnavailable) || ctx.Err() != nil):
			return nil, backoff.Permanent(err) // transient for the caller, which retries the message
		case err != nil:
			return nil, backoff.Permanent(Poison(ReasonGapUnhealable, fmt.Errorf("read %s#%d..%d from the event store: %w", aggregateID, from, to, err)))
		case !dense(envs, from, to):
			// Retried: an append may be visible to the relay before a read here sees it.
			return nil, Poison(ReasonGapUnhealable, fmt.Errorf("event store holds %d of the events %s#%d..%d", len(envs), aggregateID, from, to))
		}
		return envs, nil
	}, backoff.WithBackOff(b), backoff.WithMaxTries(uint(h.attempts)), backoff.WithMaxElapsedTime(0))
}

func dense(envs []es.Envelope, from, to int64) bool {
	if int64(len(envs)) != to-from+1 {
		return false
	}
	for i, e := range envs {
		if e.Sequence != from+int64(i) {
			return false
		}
	}
	return true
}

// plan decides what to apply for env given the row's version: nil and duplicate true when env
// is already applied, else the events to apply in order (healed ones, then env) and how many
// were healed.
func (h healer) plan(ctx context.Context, version int64, env es.Envelope) (events []es.Envelope, healed int, duplicate bool, err error) {
	return h.planStream(ctx, version, []es.Envelope{env})
}

// planStream is plan for consecutive events of one aggregate (envs, dense and in sequence
// order, as the event store returns them): those at or below the row's version are dropped
// (all of them: duplicate), and a gap between the row and the first one left is healed.
func (h healer) planStream(ctx context.Context, version int64, envs []es.Envelope) (events []es.Envelope, healed int, duplicate bool, err error) {
	for i, env := range envs {
		if env.Sequence < 1 || (i > 0 && env.Sequence != envs[i-1].Sequence+1) {
			return nil, 0, false, Poison(ReasonUnappliable, fmt.Errorf("%s: sequence %d", env, env.Sequence))
		}
		if env.AggregateID != envs[0].AggregateID {
			return nil, 0, false, Poison(ReasonUnappliable, fmt.Errorf("%s: in a stream of %s", env, envs[0].AggregateID))
		}
	}
	for len(envs) > 0 && envs[0].Sequence <= version {
		envs = envs[1:]
	}
	switch {
	case len(envs) == 0:
		return nil, 0, true, nil
	case envs[0].Sequence == version+1:
		return envs, 0, false, nil
	}
	first := envs[0]
	missing, err := h.load(ctx, first.AggregateID, version+1, first.Sequence-1)
	if err != nil {
		return nil, 0, false, err
	}
	return append(missing, envs...), len(missing), false, nil
}

// applyAll applies the events to the aggregate in order, calling after (when not nil) with
// each event's index once it is applied; a refusal is poison.
func applyAll(a es.Aggregate, events []es.Envelope, after func(i int)) ([]string, error) {
	types := make([]string, 0, len(events))
	for i, e := range events {
		if err := es.ApplyEnvelope(a, e); err != nil {
			return nil, Poison(ReasonUnappliable, err)
		}
		if after != nil {
			after(i)
		}
		types = append(types, e.EventType)
	}
	return types, nil
}

// defaultHealer retries a short read of the event store four times over about two seconds
// before calling the gap unhealable.
func defaultHealer(src EventSource) healer {
	return healer{src: src, attempts: 5, backoff: 125 * time.Millisecond}
}
