package app

import (
	"context"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/deadletter"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// breakerStates names the values of ordersys_relay_breaker_state.
var breakerStates = []string{"closed", "half-open", "open"}

// AdminServer implements orders.v1.RelayAdminService on an Admin and the relay's metrics.
type AdminServer struct {
	relayAdminBase
	deadletter.Server // the dead-letter RPCs (shallower than relayAdminBase's, so they win)
	admin             *Admin
	events            *cql.EventStore
	metrics           prometheus.Gatherer
	owner             string
	shards            func() []int // the shards the replica publishes (nil: unknown)
}

// relayAdminBase holds the generated Unimplemented server one level down, so that the
// dead-letter RPCs of deadletter.Server take precedence over its stubs.
type relayAdminBase struct {
	ordersv1.UnimplementedRelayAdminServiceServer
}

var _ ordersv1.RelayAdminServiceServer = (*AdminServer)(nil)

// NewAdminServer returns the admin service of the relay replica owner, reading its state from
// metrics (the registry the relay's metrics are registered on) and re-publishing from events.
func NewAdminServer(admin *Admin, events *cql.EventStore, metrics prometheus.Gatherer, owner string, shards func() []int) *AdminServer {
	return &AdminServer{Server: deadletter.Server{Admin: admin.dl}, admin: admin, events: events, metrics: metrics, owner: owner, shards: shards}
}

// GetRelayStatus reports the replica's lease, breaker and counters.
func (s *AdminServer) GetRelayStatus(context.Context, *ordersv1.GetRelayStatusRequest) (*ordersv1.GetRelayStatusResponse, error) {
	families, err := s.metrics.Gather()
	if err != nil {
		return nil, err
	}
	v := sums(families)
	state := int(v["ordersys_relay_breaker_state"])
	if state < 0 || state >= len(breakerStates) {
		state = 0
	}
	ages := byLabel(families, "ordersys_relay_checkpoint_age_seconds", "cursor")
	return &ordersv1.GetRelayStatusResponse{
		Owner: s.owner, Leader: v["ordersys_relay_leader"] == 1, BreakerState: breakerStates[state],
		InFlight: int64(v["ordersys_relay_in_flight"]), Published: int64(v["ordersys_relay_published_total"]),
		DeadLettered: int64(v["ordersys_relay_dead_lettered_total"]), LagSeconds: v["ordersys_relay_lag_seconds"],
		CheckpointAgeSeconds: ages, Shards: s.heldShards(),
	}, nil
}

func (s *AdminServer) heldShards() []int32 {
	if s.shards == nil {
		return nil
	}
	var out []int32
	for _, n := range s.shards() {
		out = append(out, int32(n))
	}
	return out
}

// byLabel returns the values of a gauge family by one of its labels.
func byLabel(families []*dto.MetricFamily, family, label string) map[string]float64 {
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != family {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label {
					out[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return out
}

// sums sums each metric family of the relay over its series.
func sums(families []*dto.MetricFamily) map[string]float64 {
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
	return out
}

// RepublishEvents publishes events of the event store again, streaming the progress.
func (s *AdminServer) RepublishEvents(req *ordersv1.RepublishEventsRequest, stream ordersv1.RelayAdminService_RepublishEventsServer) error {
	var v es.Violations
	deadletter.CheckTopic(&v, req.GetTopic())
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
