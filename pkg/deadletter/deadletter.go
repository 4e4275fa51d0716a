// Package deadletter is the one way to inspect, re-drive and discard what a service
// dead-lettered (the dead_letters table, pkg/cql.DeadLetters): the cdc-relay's dead letters
// (recorded under their event topic) and the projector's (under <topic>.projector.dlq). Admin
// holds the operations; Server serves them as the dead-letter RPCs of the relay's and the
// projector's admin gRPC services, which share their messages.
package deadletter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gocql/gocql"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
)

// ErrNotRedrivable marks a dead letter whose bytes are no event envelope: a rule error
// (FAILED_PRECONDITION at the gRPC edge).
var ErrNotRedrivable = &es.RuleError{Rule: "dead_letter.redrivable", Reason: "dead letter cannot be re-driven"}

// Admin works on the dead letters of one service.
type Admin struct {
	// Store is the dead_letters table.
	Store *cql.DeadLetters
	// Publisher re-drives.
	Publisher *okafka.Publisher
	// Topics maps a request's topic (empty: all) to the dead_letters topics searched, or
	// returns an error matching es.ErrInvalidArgument for a topic that is not this service's.
	Topics func(topic string) ([]string, error)
	// Target is the topic a dead letter is re-driven to.
	Target func(dl *cql.DeadLetter) string
}

// Find returns the dead letter id (searched in Topics(topic)), or an error matching
// es.ErrNotFound or es.ErrInvalidArgument.
func (a *Admin) Find(ctx context.Context, topic, id string) (*cql.DeadLetter, error) {
	if !ids.Valid(id) {
		return nil, es.Invalid("id", ids.Reason)
	}
	uid, err := gocql.ParseUUID(id)
	if err != nil {
		return nil, es.Invalid("id", ids.Reason)
	}
	topics, err := a.Topics(topic)
	if err != nil {
		return nil, err
	}
	for _, t := range topics {
		dl, err := a.Store.Get(ctx, t, uid)
		if err == nil {
			return dl, nil
		}
		if !errors.Is(err, es.ErrNotFound) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("dead letter %s in %v: %w", id, topics, es.ErrNotFound)
}

// Discard deletes the dead letter id.
func (a *Admin) Discard(ctx context.Context, topic, id string) error {
	dl, err := a.Find(ctx, topic, id)
	if err != nil {
		return err
	}
	return a.Store.Delete(ctx, dl.Topic, dl.ID)
}

// Redrive publishes the dead letter id to Target(dl), with the event headers, and marks it
// re-driven. Consumers receive it after later events of its aggregate and place it by its
// sequence header. It fails (and changes nothing) when the message still cannot be published,
// with ErrNotRedrivable when its bytes are no event envelope.
func (a *Admin) Redrive(ctx context.Context, topic, id string) (*cql.DeadLetter, es.Envelope, error) {
	dl, err := a.Find(ctx, topic, id)
	if err != nil {
		return nil, es.Envelope{}, err
	}
	env, err := codec.UnmarshalEnvelope(dl.Envelope)
	if err == nil {
		err = env.Check()
	}
	if err != nil {
		return nil, env, fmt.Errorf("%w: %s holds no valid event envelope (%v); fix the cause or discard it", ErrNotRedrivable, id, err)
	}
	target := a.Target(dl)
	msg := kafkago.Message{Topic: target, Key: []byte(env.AggregateID), Value: dl.Envelope,
		Headers: okafka.EnvelopeHeaders(env, env.TraceParent, env.TraceState)}
	var perr error
	for attempt := 1; attempt <= 5; attempt++ {
		perr = a.Publisher.Publish(ctx, []kafkago.Message{msg})[0]
		if perr == nil || okafka.IsPermanent(perr) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, env, ctx.Err()
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		}
	}
	switch {
	case perr != nil && okafka.IsPermanent(perr):
		// The broker refuses the message itself (e.g. too large): retrying cannot help.
		return nil, env, &es.RuleError{Rule: "dead_letter.publishable", Subject: id,
			Reason: fmt.Sprintf("%s refuses dead letter %s: %v; fix the cause (e.g. the topic's size limit) first", target, id, perr)}
	case perr != nil:
		return nil, env, fmt.Errorf("re-drive %s to %s: %w: %w", id, target, es.ErrUnavailable, perr)
	}
	now := time.Now().UTC()
	if err := a.Store.MarkRedriven(ctx, dl.Topic, dl.ID, now); err != nil {
		return nil, env, fmt.Errorf("re-drive %s: published, but %w", id, err)
	}
	dl.RedrivenAt = now
	return dl, env, nil
}
