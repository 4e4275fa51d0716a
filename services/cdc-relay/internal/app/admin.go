package app

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/deadletter"
	"github.com/ordersys/ordersys/pkg/es"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
)

// Admin lists, shows, re-drives and discards the relay's dead letters (pkg/deadletter) and
// re-publishes from the event store: for the relay's admin gRPC service (AdminServer) and for the
// `cdc-relay dlq` subcommands, which reach the store directly for when no relay runs.
type Admin struct {
	cfg     Config
	session *gocql.Session
	pub     *okafka.Publisher
	dl      *deadletter.Admin
}

// NewAdmin connects to the store and prepares a publisher. Close it when done.
func NewAdmin(cfg Config) (*Admin, func(), error) {
	cluster, err := okafka.ClusterFrom(cfg.Kafka)
	if err != nil {
		return nil, nil, err
	}
	s, err := cql.Connect(cql.SessionConfigFrom(cfg.CQL))
	if err != nil {
		return nil, nil, err
	}
	pub := okafka.NewPublisher(okafka.PublisherConfig{Cluster: cluster, WriteTimeout: cfg.WriteTimeout,
		MaxMessageBytes: cfg.MaxMessageBytes})
	return newAdmin(cfg, s, pub), func() { _ = pub.Close(); s.Close() }, nil
}

// newAdmin is an Admin on an open session and publisher (the running relay's). The relay's dead
// letters are recorded under their event topic and re-driven to it.
func newAdmin(cfg Config, s *gocql.Session, pub *okafka.Publisher) *Admin {
	topics := func(topic string) ([]string, error) {
		switch {
		case strings.HasSuffix(topic, okafka.ProjectorDLQSuffix):
			// Not the relay's: stripping ".dlq" would search "<topic>.projector" and find nothing.
			return nil, es.Invalid("topic", fmt.Sprintf("%q holds the projector's dead letters: ask the projector's admin service (ordersysctl projector-dlq)", topic))
		case topic != "":
			return []string{strings.TrimSuffix(topic, okafka.DLQSuffix)}, nil
		}
		return []string{cfg.OrderTopic, cfg.CustomerTopic}, nil
	}
	return &Admin{cfg: cfg, session: s, pub: pub, dl: &deadletter.Admin{Store: cql.NewDeadLetters(s), Publisher: pub,
		Topics: topics, Target: func(dl *cql.DeadLetter) string { return dl.Topic }}}
}

// List writes the dead letters of topic (all configured topics when empty) as a table.
func (a *Admin) List(ctx context.Context, w io.Writer, topic string, limit int) (int, error) {
	dls, _, err := a.dl.List(ctx, deadletter.Query{Topic: topic, PageSize: limit})
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

// ErrNotRedrivable marks a dead letter whose bytes are no event envelope.
var ErrNotRedrivable = deadletter.ErrNotRedrivable

// Redrive publishes the dead letter id (searched in topic, or in every configured topic) to
// its original topic and writes what it did to w; see RedriveOne.
func (a *Admin) Redrive(ctx context.Context, w io.Writer, topic, id string) error {
	dl, env, err := a.dl.Redrive(ctx, topic, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "re-drove %s: %s %s#%d (%s) to %s\n", id, env.AggregateType, env.AggregateID, env.Sequence, env.EventType, dl.Topic)
	return nil
}
