package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gocql/gocql"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/store"
)

// Admin lists and re-drives dead letters (the `cdc-relay dlq` subcommands).
type Admin struct {
	cfg Config
	dls *store.DeadLetters
	pub *okafka.Publisher
}

// NewAdmin connects to the store and prepares a publisher. Close it when done.
func NewAdmin(cfg Config) (*Admin, func(), error) {
	s, err := cql.Connect(cql.SessionConfig{Hosts: cfg.CQL.Hosts, Keyspace: cfg.CQL.Keyspace, Username: cfg.CQL.Username,
		Password: cfg.CQL.Password, LocalDC: cfg.CQL.LocalDC, Consistency: cfg.CQL.Consistency, SerialConsistency: cfg.CQL.SerialConsistency})
	if err != nil {
		return nil, nil, err
	}
	pub := okafka.NewPublisher(okafka.PublisherConfig{Brokers: cfg.Kafka.Brokers, WriteTimeout: cfg.WriteTimeout,
		MaxMessageBytes: cfg.MaxMessageBytes})
	return &Admin{cfg: cfg, dls: store.NewDeadLetters(s), pub: pub}, func() { _ = pub.Close(); s.Close() }, nil
}

func (a *Admin) topics(topic string) []string {
	if topic != "" {
		return []string{strings.TrimSuffix(topic, okafka.DLQSuffix)}
	}
	return []string{a.cfg.OrderTopic, a.cfg.CustomerTopic}
}

// List writes the dead letters of topic (all configured topics when empty) as a table.
func (a *Admin) List(ctx context.Context, w io.Writer, topic string, limit int) (int, error) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTOPIC\tAGGREGATE\tSEQ\tEVENT TYPE\tCREATED\tREDRIVEN\tREASON")
	n := 0
	for _, t := range a.topics(topic) {
		dls, err := a.dls.List(ctx, t, limit)
		if err != nil {
			return n, err
		}
		for _, dl := range dls {
			redriven := "-"
			if !dl.RedrivenAt.IsZero() {
				redriven = dl.RedrivenAt.Format(time.RFC3339)
			}
			reason := dl.Reason
			if len(reason) > 100 {
				reason = reason[:100] + "…"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", dl.ID, dl.Topic, orDash(dl.AggregateID), dl.Sequence,
				orDash(dl.EventType), dl.CreatedAt.Format(time.RFC3339), redriven, reason)
			n++
		}
	}
	return n, tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ErrNotRedrivable marks a dead letter whose bytes are not an event envelope.
var ErrNotRedrivable = errors.New("dead letter cannot be re-driven")

// Redrive publishes the dead letter id (searched in topic, or in every configured topic) to
// its original topic, with the event headers, and marks it re-driven. It bypasses the
// sequencer: consumers receive it after later events of its aggregate and must place it by its
// sequence header. It fails (and changes nothing) when the message still cannot be published.
func (a *Admin) Redrive(ctx context.Context, w io.Writer, topic, id string) error {
	uid, err := gocql.ParseUUID(id)
	if err != nil {
		return fmt.Errorf("dead letter id %q is not a UUID", id)
	}
	var dl *store.DeadLetter
	for _, t := range a.topics(topic) {
		dl, err = a.dls.Get(ctx, t, uid)
		if err == nil {
			break
		}
		if !store.IsNotFound(err) {
			return err
		}
	}
	if dl == nil {
		return fmt.Errorf("dead letter %s not found in %v", id, a.topics(topic))
	}
	env, err := codec.UnmarshalEnvelope(dl.Envelope)
	if err != nil || env.EventID == "" || env.AggregateID == "" {
		return fmt.Errorf("%w: %s holds no decodable event envelope (%v); fix the record or drop it", ErrNotRedrivable, id, err)
	}
	msg := kafkago.Message{Topic: dl.Topic, Key: []byte(env.AggregateID), Value: dl.Envelope,
		Headers: okafka.EnvelopeHeaders(env, env.TraceParent, env.TraceState)}
	var perr error
	for attempt := 1; attempt <= 5; attempt++ {
		perr = a.pub.Publish(ctx, []kafkago.Message{msg})[0]
		if perr == nil || okafka.IsPermanent(perr) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		}
	}
	if perr != nil {
		return fmt.Errorf("re-drive %s to %s: %w", id, dl.Topic, perr)
	}
	if err := a.dls.MarkRedriven(ctx, dl.Topic, dl.ID, time.Now()); err != nil {
		return fmt.Errorf("re-drive %s: published, but %w", id, err)
	}
	fmt.Fprintf(w, "re-drove %s: %s %s#%d (%s) to %s\n", id, env.AggregateType, env.AggregateID, env.Sequence, env.EventType, dl.Topic)
	return nil
}
