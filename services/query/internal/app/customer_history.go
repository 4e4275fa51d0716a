package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/es"
)

// GetCustomerHistory returns one page of the customer's events in sequence order (see
// GetOrderHistory). Personal fields come decrypted through the store's registry, or as
// codec.ErasedMarker once the customer was erased.
func (s *Service) GetCustomerHistory(ctx context.Context, customerID string, pageSize int, pageToken string) ([]es.Envelope, string, error) {
	return s.history(ctx, "customer_id", customer.AggregateType, customerID, pageSize, pageToken)
}

// GetCustomerAtVersion rebuilds the customer as it was right after the event with sequence
// version, replaying its events (customer snapshots are encrypted and not used here). Errors as
// GetOrderAtVersion.
func (s *Service) GetCustomerAtVersion(ctx context.Context, customerID string, version int64) (*customer.Customer, error) {
	var v es.Violations
	id, err := checkID("customer_id", customerID)
	v.Merge("", err)
	if version < 1 {
		v.Add("version", "must be at least 1")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return s.customerUntil(ctx, id, "version", attribute.Int64("ordersys.version", version), func(env es.Envelope) bool {
		return env.Sequence > version
	}, func(c *customer.Customer, _ bool) error {
		if c.Version() < version {
			return es.Rule(RuleVersionNotReached, "customer %s is at version %d; version %d does not exist yet", id, c.Version(), version)
		}
		return nil
	})
}

// GetCustomerAtTime rebuilds the customer as it was at the time: the state after the longest
// prefix of its stream whose events occurred at or before at. Errors as GetOrderAtTime.
func (s *Service) GetCustomerAtTime(ctx context.Context, customerID string, at time.Time) (*customer.Customer, error) {
	id, at, err := checkAtTime("customer_id", customerID, at)
	if err != nil {
		return nil, err
	}
	return s.customerUntil(ctx, id, "time", attribute.String("ordersys.at", at.Format(time.RFC3339Nano)), func(env es.Envelope) bool {
		return env.OccurredAt.After(at)
	}, func(_ *customer.Customer, later bool) error {
		return nil
	})
}

// customerUntil replays the customer's events up to the first that stop says is past the point,
// then lets done judge the result (later: an event past the point exists).
func (s *Service) customerUntil(ctx context.Context, id, by string, point attribute.KeyValue, stop func(es.Envelope) bool,
	done func(c *customer.Customer, later bool) error) (c *customer.Customer, err error) {
	ctx, span := s.tracer.Start(ctx, "rebuild customer at "+by, trace.WithAttributes(attribute.String("ordersys.customer_id", id), point))
	defer func() { endSpan(span, err) }()
	c = customer.New(id)
	later := false
	_, err = s.store.Load(ctx, id, 1, func(env es.Envelope) error {
		if env.AggregateType != customer.AggregateType {
			return fmt.Errorf("customer %s: the id names a %s, not a customer: %w", id, env.AggregateType, es.ErrNotFound)
		}
		if stop(env) {
			later = true
			return errStop
		}
		return es.ApplyEnvelope(c, env)
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	span.SetAttributes(attribute.Int64("ordersys.version", c.Version()))
	s.opts.Metrics.observeRebuild(by, StartScratch, int(c.Version()))
	if c.Version() == 0 {
		if later {
			return nil, fmt.Errorf("customer %s did not exist yet at that point: %w", id, es.ErrNotFound)
		}
		return nil, fmt.Errorf("customer %s: no events: %w", id, es.ErrNotFound)
	}
	if err := done(c, later); err != nil {
		return nil, err
	}
	return c, nil
}
