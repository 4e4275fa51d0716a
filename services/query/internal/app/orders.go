package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

// GetOrder returns the order's read-model row. With minVersion set, it waits until the row has
// reached that version (see the package comment); a missing row of an order that exists in the
// event store is waited for as well. Errors: es.ErrInvalidArgument (bad id, negative
// minVersion), es.ErrNotFound (no such order), context.DeadlineExceeded (the version did not
// arrive in time), es.ErrUnavailable.
func (s *Service) GetOrder(ctx context.Context, orderID string, minVersion *int64) (o readmodel.Order, err error) {
	id, err := checkID("order_id", orderID)
	if err != nil {
		return readmodel.Order{}, err
	}
	want := int64(0)
	if minVersion != nil {
		if *minVersion < 0 {
			return readmodel.Order{}, es.Invalid("min_version", "must not be negative")
		}
		want = *minVersion
	}

	o, err = s.rm.GetOrder(ctx, id)
	switch {
	case err == nil && o.State.Version() >= want:
		if minVersion != nil {
			s.opts.Metrics.minVersion.WithLabelValues("ready").Inc()
		}
		return o, nil
	case err == nil:
	case errors.Is(err, es.ErrNotFound):
		// No row: an order the event store does not know is not found; one it knows is
		// waited for (the projector has not written it yet).
		if err := s.checkOrderExists(ctx, id); err != nil {
			return readmodel.Order{}, err
		}
		want = max(want, 1)
	default:
		return readmodel.Order{}, err
	}
	if minVersion != nil {
		s.opts.Metrics.minVersion.WithLabelValues("waited").Inc()
	}
	return s.waitForVersion(ctx, id, want)
}

// checkOrderExists returns nil when the event store holds an order with the id, an error
// matching es.ErrNotFound when it holds nothing or another aggregate kind.
func (s *Service) checkOrderExists(ctx context.Context, id string) error {
	first, err := s.store.LoadRange(ctx, id, 1, 1)
	if err != nil {
		return fmt.Errorf("order %s: look up in the event store: %w", id, err)
	}
	if len(first) == 0 || first[0].AggregateType != order.AggregateType {
		return fmt.Errorf("order %s: %w", id, es.ErrNotFound)
	}
	return nil
}

// waitForVersion polls the read model until the order's row has reached version want, the
// deadline (the call's, less the margin, or MaxWait) is near, or ctx ends.
func (s *Service) waitForVersion(ctx context.Context, id string, want int64) (o readmodel.Order, err error) {
	start := time.Now()
	deadline := start.Add(s.opts.MaxWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	deadline = deadline.Add(-s.opts.DeadlineMargin)
	ctx, span := s.tracer.Start(ctx, "wait for read model", trace.WithAttributes(
		attribute.String("ordersys.order_id", id), attribute.Int64("ordersys.min_version", want)))
	s.opts.Metrics.waits.Inc()

	polls, seen := 0, int64(-1) // seen: the version last read, -1 while the row is missing
	defer func() {
		outcome := WaitReached
		switch {
		case err == nil:
		case errors.Is(err, errWaitTimedOut):
			outcome = WaitTimeout
		case errors.Is(err, context.Canceled):
			outcome = WaitCanceled
		case errors.Is(err, context.DeadlineExceeded):
			outcome = WaitTimeout
		case errors.Is(err, es.ErrNotFound):
			outcome = WaitNotFound
		default:
			outcome = WaitError
		}
		s.opts.Metrics.observeWait(outcome, polls, time.Since(start))
		span.SetAttributes(attribute.Int("ordersys.polls", polls), attribute.Int64("ordersys.seen_version", seen),
			attribute.String("ordersys.outcome", outcome))
		endSpan(span, err)
	}()

	timedOut := func() error {
		at := "has no row yet"
		if seen >= 0 {
			at = fmt.Sprintf("is at version %d", seen)
		}
		return fmt.Errorf("order %s: read model %s after waiting %s for version %d: %w",
			id, at, time.Since(start).Round(time.Millisecond), want, errWaitTimedOut)
	}
	pause := s.opts.MinPoll
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return readmodel.Order{}, timedOut()
		}
		t := time.NewTimer(min(pause, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return readmodel.Order{}, fmt.Errorf("order %s: wait for version %d: %w", id, want, ctx.Err())
		case <-t.C:
		}
		pause = min(2*pause, s.opts.MaxPoll)
		if time.Until(deadline) <= 0 {
			// No time left for a read and the answer: say where the read model stands.
			return readmodel.Order{}, timedOut()
		}

		polls++
		o, err = s.rm.GetOrder(ctx, id)
		switch {
		case err == nil && o.State.Version() >= want:
			return o, nil
		case err == nil:
			seen = o.State.Version()
		case errors.Is(err, es.ErrNotFound):
			seen = -1
		default:
			return readmodel.Order{}, err
		}
	}
}

// errWaitTimedOut marks a wait that ran out of time; it matches context.DeadlineExceeded, so
// the transport edge reports DEADLINE_EXCEEDED.
var errWaitTimedOut = fmt.Errorf("read model did not reach the version in time: %w", context.DeadlineExceeded)

// checkPageSize checks a requested page size and applies the default (for 0) and the cap.
func checkPageSize(n, def, limit int) (int, error) {
	switch {
	case n < 0:
		return 0, es.Invalid("page_size", "must not be negative")
	case n == 0:
		return def, nil
	default:
		return min(n, limit), nil
	}
}

// ListOrdersByCustomer returns one page of the customer's orders, newest first. Errors:
// es.ErrInvalidArgument (bad customer id, negative page size, bad or foreign page token),
// es.ErrUnavailable.
func (s *Service) ListOrdersByCustomer(ctx context.Context, customerID string, pageSize int32, pageToken string) (readmodel.Page, error) {
	var v es.Violations
	id, err := checkID("customer_id", customerID)
	v.Merge("", err)
	size, err := checkPageSize(int(pageSize), s.opts.DefaultPageSize, s.opts.MaxPageSize)
	v.Merge("", err)
	if err := v.Err(); err != nil {
		return readmodel.Page{}, err
	}
	return s.rm.ListOrdersByCustomer(ctx, id, size, pageToken)
}

// ListOrdersByStatus returns one page of the orders currently in the status, newest first
// (merged from every shard of the status). Errors: es.ErrInvalidArgument (unspecified or unknown
// status, negative page size, bad or foreign page token), es.ErrUnavailable.
func (s *Service) ListOrdersByStatus(ctx context.Context, status order.Status, pageSize int32, pageToken string) (readmodel.Page, error) {
	var v es.Violations
	if status <= order.StatusUnspecified || status > order.StatusCancelled {
		v.Add("status", "must be CREATED, CONFIRMED, SHIPPED, DELIVERED or CANCELLED")
	}
	size, err := checkPageSize(int(pageSize), s.opts.DefaultPageSize, s.opts.MaxPageSize)
	v.Merge("", err)
	if err := v.Err(); err != nil {
		return readmodel.Page{}, err
	}
	return s.rm.ListOrdersByStatus(ctx, status, size, pageToken)
}

// GetCustomer returns the customer's read model. Errors: es.ErrInvalidArgument (bad id),
// es.ErrNotFound, es.ErrUnavailable.
func (s *Service) GetCustomer(ctx context.Context, customerID string) (*customer.Customer, error) {
	id, err := checkID("customer_id", customerID)
	if err != nil {
		return nil, err
	}
	return s.rm.GetCustomer(ctx, id)
}
