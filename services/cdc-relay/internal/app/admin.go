package app

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gocql/gocql"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/store"
)

// Admin lists, shows, re-drives and discards dead letters: for the relay's admin gRPC service
// (AdminServer) and for the `cdc-relay dlq` subcommands, which reach the store directly for when
// no relay runs.
type Admin struct {
	cfg     Config
	session *gocql.Session
	dls     *store.DeadLetters
	pub     *okafka.Publisher
}

// NewAdmin connects to the store and prepares a publisher. Close it when done.
func NewAdmin(cfg Config) (*Admin, func(), error) {
	s, err := cql.Connect(cql.SessionConfigFrom(cfg.CQL))
	if err != nil {
		return nil, nil, err
	}
	pub := okafka.NewPublisher(okafka.PublisherConfig{Brokers: cfg.Kafka.Brokers, WriteTimeout: cfg.WriteTimeout,
		MaxMessageBytes: cfg.MaxMessageBytes})
	return newAdmin(cfg, s, pub), func() { _ = pub.Close(); s.Close() }, nil
}

// newAdmin is an Admin on an open session and publisher (the running relay's).
func newAdmin(cfg Config, s *gocql.Session, pub *okafka.Publisher) *Admin {
	return &Admin{cfg: cfg, session: s, dls: store.NewDeadLetters(s), pub: pub}
}

// DeadLetters returns up to limit dead letters of each of the topics (every configured event
// topic when topic is empty).
func (a *Admin) DeadLetters(ctx context.Context, topic string, limit int) ([]*store.DeadLetter, error) {
	var all []*store.DeadLetter
	for _, t := range a.topics(topic) {
		dls, err := a.dls.List(ctx, t, limit)
		if err != nil {
			return all, err
		}
		all = append(all, dls...)
	}
	return all, nil
}

// Find returns the dead letter id of topic (searched in every event topic when empty), or an
// error matching es.ErrNotFound or es.ErrInvalidArgument.
func (a *Admin) Find(ctx context.Context, topic, id string) (*store.DeadLetter, error) {
	if !ids.Valid(id) {
		return nil, es.Invalid("id", ids.Reason)
	}
	uid, err := gocql.ParseUUID(id)
	if err != nil {
		return nil, es.Invalid("id", ids.Reason)
	}
	for _, t := range a.topics(topic) {
		dl, err := a.dls.Get(ctx, t, uid)
		if err == nil {
			return dl, nil
		}
		if !store.IsNotFound(err) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("dead letter %s in %v: %w", id, a.topics(topic), es.ErrNotFound)
}

// Discard deletes the dead letter id.
func (a *Admin) Discard(ctx context.Context, topic, id string) error {
	dl, err := a.Find(ctx, topic, id)
	if err != nil {
		return err
	}
	return a.dls.Delete(ctx, dl.Topic, dl.ID)
}

func (a *Admin) topics(topic string) []string {
	if topic != "" {
		return []string{strings.TrimSuffix(topic, okafka.DLQSuffix)}
	}
	return []string{a.cfg.OrderTopic, a.cfg.CustomerTopic}
}

// List writes the dead letters of topic (all configured topics when empty) as a table.
func (a *Admin) List(ctx context.Context, w io.Writer, topic string, limit int) (int, error) {
	dls, err := a.DeadLetters(ctx, topic, limit)
	if err != nil {
		return 0, err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTOPIC\tAGGREGATE\tSEQ\tEVENT TYPE\tCREATED\tREDRIVEN\tREASON")
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
	}
	return len(dls), tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ErrNotRedrivable marks a dead letter whose bytes are not an event envelope. It is a rule
// error (FAILED_PRECONDITION at the gRPC edge).
var ErrNotRedrivable = &es.RuleError{Rule: "relay.dead_letter.redrivable", Reason: "dead letter cannot be re-driven"}

// Redrive publishes the dead letter id (searched in topic, or in every configured topic) to
// its original topic and writes what it did to w; see RedriveOne.
func (a *Admin) Redrive(ctx context.Context, w io.Writer, topic, id string) error {
	dl, env, err := a.RedriveOne(ctx, topic, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "re-drove %s: %s %s#%d (%s) to %s\n", id, env.AggregateType, env.AggregateID, env.Sequence, env.EventType, dl.Topic)
	return nil
}

// RedriveOne publishes the dead letter id to its original topic, with the event headers, and
// marks it re-driven. It bypasses the sequencer: consumers receive it after later events of its
// aggregate and must place it by its sequence header. It fails (and changes nothing) when the
// message still cannot be published; ErrNotRedrivable when its bytes are no event envelope.
func (a *Admin) RedriveOne(ctx context.Context, topic, id string) (*store.DeadLetter, es.Envelope, error) {
	dl, err := a.Find(ctx, topic, id)
	if err != nil {
		return nil, es.Envelope{}, err
	}
	env, err := codec.UnmarshalEnvelope(dl.Envelope)
	if err != nil || env.EventID == "" || env.AggregateID == "" {
		return nil, env, fmt.Errorf("%w: %s holds no decodable event envelope (%v); fix the record or discard it", ErrNotRedrivable, id, err)
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
			return nil, env, ctx.Err()
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		}
	}
	if perr != nil {
		return nil, env, fmt.Errorf("re-drive %s to %s: %w: %w", id, dl.Topic, es.ErrUnavailable, perr)
	}
	now := time.Now().UTC()
	if err := a.dls.MarkRedriven(ctx, dl.Topic, dl.ID, now); err != nil {
		return nil, env, fmt.Errorf("re-drive %s: published, but %w", id, err)
	}
	dl.RedrivenAt = now
	return dl, env, nil
}
