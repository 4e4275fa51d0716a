package app

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/store"
)

// Limits of the admin requests (stated on the Rules lines of proto/orders/v1/relay_admin.proto).
const (
	// defaultDeadLetterPage and maxDeadLetterPage bound ListDeadLetters per topic.
	defaultDeadLetterPage, maxDeadLetterPage = 100, 1000
	// maxTopicLen is Kafka's limit on a topic name.
	maxTopicLen = 249
)

// breakerStates names the values of ordersys_relay_breaker_state.
var breakerStates = []string{"closed", "half-open", "open"}

// AdminServer implements orders.v1.RelayAdminService on an Admin and the relay's metrics.
type AdminServer struct {
	ordersv1.UnimplementedRelayAdminServiceServer
	admin   *Admin
	events  *cql.EventStore
	metrics prometheus.Gatherer
	owner   string
}

var _ ordersv1.RelayAdminServiceServer = (*AdminServer)(nil)

// NewAdminServer returns the admin service of the relay replica owner, reading its state from
// metrics (the registry the relay's metrics are registered on) and re-publishing from events.
func NewAdminServer(admin *Admin, events *cql.EventStore, metrics prometheus.Gatherer, owner string) *AdminServer {
	return &AdminServer{admin: admin, events: events, metrics: metrics, owner: owner}
}

// GetRelayStatus reports the replica's lease, breaker and counters.
func (s *AdminServer) GetRelayStatus(context.Context, *ordersv1.GetRelayStatusRequest) (*ordersv1.GetRelayStatusResponse, error) {
	v, err := s.values()
	if err != nil {
		return nil, err
	}
	state := int(v["ordersys_relay_breaker_state"])
	if state < 0 || state >= len(breakerStates) {
		state = 0
	}
	return &ordersv1.GetRelayStatusResponse{
		Owner: s.owner, Leader: v["ordersys_relay_leader"] == 1, BreakerState: breakerStates[state],
		InFlight: int64(v["ordersys_relay_in_flight"]), Published: int64(v["ordersys_relay_published_total"]),
		DeadLettered: int64(v["ordersys_relay_dead_lettered_total"]),
	}, nil
}

// values sums each metric family of the relay over its series.
func (s *AdminServer) values() (map[string]float64, error) {
	families, err := s.metrics.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch {
			case m.GetGauge() != nil:
				out[f.GetName()] += m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[f.GetName()] += m.GetCounter().GetValue()
			}
		}
	}
	return out, nil
}

// ListDeadLetters lists dead letters without their bytes.
func (s *AdminServer) ListDeadLetters(ctx context.Context, req *ordersv1.ListDeadLettersRequest) (*ordersv1.ListDeadLettersResponse, error) {
	var v es.Violations
	checkTopic(&v, req.GetTopic())
	size := int(req.GetPageSize())
	switch {
	case size < 0 || size > maxDeadLetterPage:
		v.Addf("page_size", "must be from 0 to %d, got %d", maxDeadLetterPage, size)
	case size == 0:
		size = defaultDeadLetterPage
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	dls, err := s.admin.DeadLetters(ctx, req.GetTopic(), size)
	if err != nil {
		return nil, err
	}
	out := &ordersv1.ListDeadLettersResponse{}
	for _, dl := range dls {
		out.DeadLetters = append(out.DeadLetters, deadLetterToProto(dl, false))
	}
	return out, nil
}

// GetDeadLetter returns one dead letter with its bytes.
func (s *AdminServer) GetDeadLetter(ctx context.Context, req *ordersv1.GetDeadLetterRequest) (*ordersv1.GetDeadLetterResponse, error) {
	if err := checkTopicOnly(req.GetTopic()); err != nil {
		return nil, err
	}
	dl, err := s.admin.Find(ctx, req.GetTopic(), strings.TrimSpace(req.GetId()))
	if err != nil {
		return nil, err
	}
	return &ordersv1.GetDeadLetterResponse{DeadLetter: deadLetterToProto(dl, true)}, nil
}

// RedriveDeadLetter publishes a dead letter again and marks it re-driven.
func (s *AdminServer) RedriveDeadLetter(ctx context.Context, req *ordersv1.RedriveDeadLetterRequest) (*ordersv1.RedriveDeadLetterResponse, error) {
	if err := checkTopicOnly(req.GetTopic()); err != nil {
		return nil, err
	}
	dl, _, err := s.admin.RedriveOne(ctx, req.GetTopic(), strings.TrimSpace(req.GetId()))
	if err != nil {
		return nil, err
	}
	return &ordersv1.RedriveDeadLetterResponse{DeadLetter: deadLetterToProto(dl, false)}, nil
}

// DiscardDeadLetter deletes a dead letter.
func (s *AdminServer) DiscardDeadLetter(ctx context.Context, req *ordersv1.DiscardDeadLetterRequest) (*ordersv1.DiscardDeadLetterResponse, error) {
	if err := checkTopicOnly(req.GetTopic()); err != nil {
		return nil, err
	}
	if err := s.admin.Discard(ctx, req.GetTopic(), strings.TrimSpace(req.GetId())); err != nil {
		return nil, err
	}
	return &ordersv1.DiscardDeadLetterResponse{}, nil
}

func checkTopic(v *es.Violations, topic string) {
	if n := utf8.RuneCountInString(topic); n > maxTopicLen {
		v.Addf("topic", "must be at most %d characters, got %d", maxTopicLen, n)
	}
}

func checkTopicOnly(topic string) error {
	var v es.Violations
	checkTopic(&v, topic)
	return v.Err()
}

func deadLetterToProto(dl *store.DeadLetter, withBytes bool) *ordersv1.DeadLetter {
	out := &ordersv1.DeadLetter{Id: dl.ID.String(), Topic: dl.Topic, AggregateId: dl.AggregateID, Sequence: dl.Sequence,
		EventId: dl.EventID, EventType: dl.EventType, Reason: dl.Reason, CreatedAt: timestamppb.New(dl.CreatedAt)}
	if !dl.RedrivenAt.IsZero() {
		out.RedrivenAt = timestamppb.New(dl.RedrivenAt)
	}
	if withBytes {
		out.Envelope = dl.Envelope
	}
	return out
}

// RepublishEvents publishes events of the event store again, streaming the progress.
func (s *AdminServer) RepublishEvents(req *ordersv1.RepublishEventsRequest, stream ordersv1.RelayAdminService_RepublishEventsServer) error {
	var v es.Violations
	checkTopic(&v, req.GetTopic())
	if n := utf8.RuneCountInString(req.GetJob()); n > 100 {
		v.Addf("job", "must be at most 100 characters, got %d", n)
	}
	if r := req.GetRatePerSecond(); r > 1_000_000 {
		v.Addf("rate_per_second", "must be at most 1000000, got %d", r)
	}
	if n := len(req.GetAggregateIds()); n > 1000 {
		v.Addf("aggregate_ids", "must hold at most 1000 items, got %d", n)
	}
	if err := v.Err(); err != nil {
		return err
	}
	var sendErr error
	err := s.admin.Republish(stream.Context(), s.events, RepublishRequest{Job: req.GetJob(), Topic: req.GetTopic(),
		Rate: int(req.GetRatePerSecond()), AggregateIDs: req.GetAggregateIds()}, func(p RepublishProgress) {
		if sendErr == nil {
			sendErr = stream.Send(&ordersv1.RepublishEventsResponse{Aggregates: p.Aggregates, Events: p.Events, Fraction: p.Fraction,
				EventsPerSecond: p.Rate, EtaSeconds: int64(p.ETA.Seconds()), Done: p.Done})
		}
	})
	if err != nil {
		return err
	}
	return sendErr
}
