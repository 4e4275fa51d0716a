package app

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
)

// RuleVersionNotReached is the rule of the FAILED_PRECONDITION GetOrderAt returns for a version
// beyond the order's current one.
const RuleVersionNotReached = "order.at.version_not_reached"

// maxSnapshotTries bounds how many snapshots GetOrderAt by time walks back through (the event
// store keeps three) before replaying from the first event.
const maxSnapshotTries = 4

// errStop ends a Load early.
var errStop = errors.New("stop")

// notAnOrder is the error of an id whose stream belongs to another aggregate kind.
func notAnOrder(id, aggregateType string) error {
	return fmt.Errorf("order %s: the id names a %s, not an order: %w", id, aggregateType, es.ErrNotFound)
}

// History page sizes (see GetOrderHistoryRequest in proto/orders/v1/order_query.proto).
const (
	// DefaultHistoryPageSize is the page of a request that asks for 0 events.
	DefaultHistoryPageSize = 100
	// MaxHistoryPageSize caps one page.
	MaxHistoryPageSize = 1000
)

// GetOrderHistory returns one page of the order's events in sequence order, decoded and upcast,
// and the token of the next page ("" on the last). pageToken is "" or a token this method
// returned for the same order. Errors: es.ErrInvalidArgument (bad id, negative page size, a
// token of another order or none of ours), es.ErrNotFound (no events, or not an order),
// es.ErrUnavailable.
func (s *Service) GetOrderHistory(ctx context.Context, orderID string, pageSize int, pageToken string) (envs []es.Envelope, next string, err error) {
	return s.history(ctx, "order_id", order.AggregateType, orderID, pageSize, pageToken)
}

// history is GetOrderHistory for an aggregate of the given type, its id in the request field
// idField.
func (s *Service) history(ctx context.Context, idField, aggregateType, rawID string, pageSize int, pageToken string) (envs []es.Envelope, next string, err error) {
	var v es.Violations
	id, err := checkID(idField, rawID)
	v.Merge("", err)
	size, err := checkPageSize(pageSize, DefaultHistoryPageSize, MaxHistoryPageSize)
	v.Merge("", err)
	from := int64(1)
	if pageToken != "" {
		if from, err = decodeHistoryToken(pageToken, id); err != nil {
			v.Add("page_token", err.Error())
		}
	}
	if err := v.Err(); err != nil {
		return nil, "", err
	}
	kind := strings.ToLower(aggregateType)
	ctx, span := s.tracer.Start(ctx, "load "+kind+" history", trace.WithAttributes(attribute.String("ordersys."+idField, id),
		attribute.Int64("ordersys.from", from)))
	defer func() {
		span.SetAttributes(attribute.Int("ordersys.events", len(envs)))
		endSpan(span, err)
	}()
	// One more than the page: whether a next page exists, without a second read.
	envs, err = s.store.LoadRange(ctx, id, from, from+int64(size))
	if err != nil {
		return nil, "", err
	}
	for _, env := range envs {
		if env.AggregateType != aggregateType {
			return nil, "", fmt.Errorf("%s %s: the id names a %s, not %s: %w", kind, id, env.AggregateType, article(kind), es.ErrNotFound)
		}
	}
	if len(envs) == 0 {
		if from > 1 {
			return nil, "", nil // a token past the end: an empty last page
		}
		return nil, "", fmt.Errorf("%s %s: no events: %w", kind, id, es.ErrNotFound)
	}
	if len(envs) > size {
		envs = envs[:size]
		next = encodeHistoryToken(id, envs[len(envs)-1].Sequence+1)
	}
	return envs, next, nil
}

// historyTokenPrefix versions the history page token format.
const historyTokenPrefix = "h1:"

// encodeHistoryToken makes the opaque token of the page starting at sequence from.
func encodeHistoryToken(orderID string, from int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(historyTokenPrefix + orderID + ":" + strconv.FormatInt(from, 10)))
}

// errForeignHistoryToken is the reason a page_token is refused: not made by GetOrderHistory for
// this order.
var errForeignHistoryToken = errors.New("is not a page token of this query")

// decodeHistoryToken returns the first sequence of the page a token names, checking it was made
// for orderID.
func decodeHistoryToken(token, orderID string) (int64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, errForeignHistoryToken
	}
	rest, ok := strings.CutPrefix(string(raw), historyTokenPrefix+orderID+":")
	if !ok {
		return 0, errForeignHistoryToken
	}
	from, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || from < 1 {
		return 0, errForeignHistoryToken
	}
	return from, nil
}

// GetOrderAtVersion rebuilds the order as it was right after the event with sequence version:
// the newest snapshot at or below version, then the events up to version. Errors:
// es.ErrInvalidArgument (bad id, version < 1), es.ErrNotFound (no such order), an *es.RuleError
// RuleVersionNotReached (version beyond the current one), es.ErrUnavailable.
func (s *Service) GetOrderAtVersion(ctx context.Context, orderID string, version int64) (o *order.Order, err error) {
	var v es.Violations
	id, err := checkID("order_id", orderID)
	v.Merge("", err)
	if version < 1 {
		v.Add("version", "must be at least 1")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	ctx, span := s.tracer.Start(ctx, "rebuild order at version", trace.WithAttributes(
		attribute.String("ordersys.order_id", id), attribute.Int64("ordersys.version", version)))
	defer func() { endSpan(span, err) }()

	o, start := s.fromSnapshot(ctx, id, version, nil)
	replayed := 0
	if o.Version() < version {
		envs, err := s.store.LoadRange(ctx, id, o.Version()+1, version)
		if err != nil {
			return nil, err
		}
		for _, env := range envs {
			if env.AggregateType != order.AggregateType {
				return nil, notAnOrder(id, env.AggregateType)
			}
		}
		if err := es.Replay(o, envs); err != nil {
			return nil, fmt.Errorf("rebuild order %s at version %d: %w", id, version, err)
		}
		replayed = len(envs)
	}
	span.SetAttributes(attribute.String("ordersys.start", start), attribute.Int("ordersys.replayed", replayed))
	s.opts.Metrics.observeRebuild("version", start, replayed)
	switch {
	case o.Version() == 0:
		return nil, fmt.Errorf("order %s: no events: %w", id, es.ErrNotFound)
	case o.Version() < version:
		return nil, es.Rule(RuleVersionNotReached, "order %s is at version %d; version %d does not exist yet", id, o.Version(), version)
	}
	return o, nil
}

// GetOrderAtTime rebuilds the order as it was at the time: the state after the longest prefix of
// its stream whose events occurred at or before at (see the package comment for the snapshot
// rule). Errors: es.ErrInvalidArgument (bad id, zero time), es.ErrNotFound (no such order, or
// created after at), es.ErrUnavailable.
func (s *Service) GetOrderAtTime(ctx context.Context, orderID string, at time.Time) (o *order.Order, err error) {
	id, at, err := checkAtTime("order_id", orderID, at)
	if err != nil {
		return nil, err
	}
	ctx, span := s.tracer.Start(ctx, "rebuild order at time", trace.WithAttributes(
		attribute.String("ordersys.order_id", id), attribute.String("ordersys.at", at.Format(time.RFC3339Nano))))
	defer func() { endSpan(span, err) }()

	o, start := s.fromSnapshot(ctx, id, 0, func(o *order.Order) bool { return !o.UpdatedAt.After(at) })
	replayed, later := 0, false
	_, err = s.store.Load(ctx, id, o.Version()+1, func(env es.Envelope) error {
		if env.AggregateType != order.AggregateType {
			return notAnOrder(id, env.AggregateType)
		}
		if env.OccurredAt.After(at) {
			later = true
			return errStop
		}
		replayed++
		return es.ApplyEnvelope(o, env)
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	span.SetAttributes(attribute.String("ordersys.start", start), attribute.Int("ordersys.replayed", replayed),
		attribute.Int64("ordersys.version", o.Version()))
	s.opts.Metrics.observeRebuild("time", start, replayed)
	if o.Version() == 0 {
		if later {
			return nil, fmt.Errorf("order %s did not exist yet at %s: %w", id, at.Format(time.RFC3339Nano), es.ErrNotFound)
		}
		return nil, fmt.Errorf("order %s: no events: %w", id, es.ErrNotFound)
	}
	return o, nil
}

// fromSnapshot returns the order restored from its newest usable snapshot at or below
// maxVersion (0: any) that accept (nil: any) takes, walking back through older snapshots when
// accept refuses one, or a fresh order at version 0 when none is usable. start says which.
// Snapshots are an optimisation: a read error or an unreadable snapshot means replaying from
// the first event, never a failure.
func (s *Service) fromSnapshot(ctx context.Context, id string, maxVersion int64, accept func(*order.Order) bool) (*order.Order, string) {
	for range maxSnapshotTries {
		snap, err := s.store.LatestSnapshot(ctx, id, maxVersion)
		if err != nil {
			if !errors.Is(err, es.ErrNotFound) {
				s.opts.Logger.DebugContext(ctx, "snapshot not read; replaying from the start", "order_id", id, "err", err)
			}
			break
		}
		if snap.AggregateType != order.AggregateType || snap.Version < 1 {
			break
		}
		agg, err := s.opts.Snapshots.Restore(snap)
		o, ok := agg.(*order.Order)
		if err != nil || !ok {
			s.opts.Logger.DebugContext(ctx, "snapshot not usable; replaying from the start", "order_id", id,
				"snapshot_version", snap.Version, "err", err)
			break
		}
		if accept == nil || accept(o) {
			return o, StartSnapshot
		}
		if snap.Version <= 1 {
			break
		}
		maxVersion = snap.Version - 1
	}
	return order.New(id), StartScratch
}

// article puts "a" or "an" before a noun.
func article(noun string) string {
	if strings.ContainsAny(noun[:1], "aeiou") {
		return "an " + noun
	}
	return "a " + noun
}

// checkAtTime checks the id and the time of a GetOrderAt or GetCustomerAt by time.
func checkAtTime(idField, rawID string, at time.Time) (string, time.Time, error) {
	var v es.Violations
	id, err := checkID(idField, rawID)
	v.Merge("", err)
	if at.IsZero() {
		v.Add("at", "must be a valid timestamp")
	}
	return id, at.UTC(), v.Err()
}
