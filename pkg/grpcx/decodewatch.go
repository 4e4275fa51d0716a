package grpcx

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// HealthServiceDecoding is the health service name under which the cdc-relay and the projector
// say whether every event they met could be decoded: SERVING until the first one that could not,
// NOT_SERVING from then until the process restarts. Probes check the server as a whole (""), so
// a bad event never restarts a pod; an operator or a check (`grpc_health_probe -service
// ordersys.decoding`) sees it at once.
const HealthServiceDecoding = "ordersys.decoding"

// DecodeWatch makes an event that a consumer cannot decode impossible to miss: it counts it in
// <namespace>_undecodable_events_total{reason}, logs it at error level with the aggregate, the
// sequence and the event id, and turns the HealthServiceDecoding health status NOT_SERVING. The
// event itself still goes to the dead-letter path; this is the signal that someone must look at
// it. A nil *DecodeWatch does nothing.
type DecodeWatch struct {
	counter *prometheus.CounterVec
	health  *health.Server
	log     *slog.Logger
}

// NewDecodeWatch returns a watch registering its counter on reg (nil: not registered) under
// namespace (e.g. "ordersys_relay"), with a series at 0 for each of reasons (so a scrape shows
// the counter before anything went wrong), reporting on hs (nil: no health status; else set
// SERVING now) and logging to log (nil: slog.Default()).
func NewDecodeWatch(reg prometheus.Registerer, namespace string, hs *health.Server, log *slog.Logger, reasons ...string) *DecodeWatch {
	w := &DecodeWatch{
		counter: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "undecodable_events_total",
			Help: "Events that could not be decoded or broke the shared envelope contract, by reason; each one is also dead-lettered."},
			[]string{"reason"}),
		health: hs,
		log:    log,
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	for _, r := range reasons {
		w.counter.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(w.counter)
	}
	if hs != nil {
		hs.SetServingStatus(HealthServiceDecoding, healthpb.HealthCheckResponse_SERVING)
	}
	return w
}

// Undecodable reports one event that cannot be decoded: what it is (aggregate, sequence, event
// id, any of them possibly unknown), why (reason, a short metric label, and err) and where it
// went (deadLetter, e.g. the dead-letter topic).
func (w *DecodeWatch) Undecodable(ctx context.Context, aggregateID string, sequence int64, eventID, reason, deadLetter string, err error) {
	if w == nil {
		return
	}
	w.counter.WithLabelValues(reason).Inc()
	w.log.ErrorContext(ctx, "undecodable event: it is dead-lettered and needs an operator",
		"aggregate_id", aggregateID, "sequence", sequence, "event_id", eventID, "reason", reason,
		"dead_letter", deadLetter, "err", err)
	if w.health != nil {
		w.health.SetServingStatus(HealthServiceDecoding, healthpb.HealthCheckResponse_NOT_SERVING)
	}
}
