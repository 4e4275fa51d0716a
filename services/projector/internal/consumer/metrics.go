package consumer

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the projector's Prometheus metrics. Every series carries the projection name and
// the table version it writes.
type Metrics struct {
	// Applied counts events applied to a read model (healed ones included), by event type.
	Applied *prometheus.CounterVec
	// Duplicates counts messages skipped because their sequence was already applied.
	Duplicates *prometheus.CounterVec
	// GapsHealed counts gaps filled from the event store before applying a message.
	GapsHealed *prometheus.CounterVec
	// HealedEvents counts the events read from the event store to fill gaps.
	HealedEvents *prometheus.CounterVec
	// DeadLetters counts messages sent to the DLQ, by reason.
	DeadLetters *prometheus.CounterVec
	// Retries counts transient failures retried (store or broker unavailable).
	Retries *prometheus.CounterVec
	// EventLag observes now − event time when an event is applied.
	EventLag *prometheus.HistogramVec
	// ConsumerLag is the number of messages behind the partition's high-water mark, per topic and
	// partition, as of the last message processed.
	ConsumerLag *prometheus.GaugeVec
	// Stalled is 1 while a partition cannot progress (one message has kept failing for the
	// consumer's StallAfter), per topic and partition.
	Stalled *prometheus.GaugeVec
	// lag exports the age of the oldest message read and not yet applied, per partition
	// (ordersys_projector_lag_seconds).
	lag *lagCollector
}

// NewMetrics creates the metrics and registers them on reg (nil: not registered, for tests
// that run several projectors in one process).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	labels := []string{"projection", "version"}
	m := &Metrics{
		Applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersys_projector_events_applied_total", Help: "Events applied to a read model, including events healed from the event store.",
		}, append(labels, "event_type")),
		Duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersys_projector_duplicates_total", Help: "Messages skipped because their sequence was already applied.",
		}, labels),
		GapsHealed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersys_projector_gaps_healed_total", Help: "Sequence gaps filled from the event store before applying a message.",
		}, labels),
		HealedEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersys_projector_healed_events_total", Help: "Events read from the event store to fill gaps.",
		}, labels),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersys_projector_dead_letters_total", Help: "Messages sent to the projection's dead-letter topic, by reason.",
		}, append(labels, "reason")),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersys_projector_retries_total", Help: "Transient failures (store or broker unavailable) retried before a message could be processed.",
		}, labels),
		EventLag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ordersys_projector_event_lag_seconds",
			Help:    "Time from the event (its occurred_at) to its application to the read model.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800},
		}, labels),
		ConsumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ordersys_projector_consumer_lag_messages", Help: "Messages behind the partition's high-water mark as of the last message processed.",
		}, append(labels, "topic", "partition")),
		Stalled: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ordersys_projector_partition_stalled", Help: "1 while a partition cannot progress: one message has kept failing (transiently) for the stall threshold (30s).",
		}, append(labels, "topic", "partition")),
		lag: newLagCollector(),
	}
	if reg != nil {
		reg.MustRegister(m.Applied, m.Duplicates, m.GapsHealed, m.HealedEvents, m.DeadLetters, m.Retries, m.EventLag, m.ConsumerLag, m.Stalled,
			m.lag)
	}
	return m
}

// AddApplied counts one event of eventType applied to version of projection (app.AppliedCounter).
func (m *Metrics) AddApplied(projection string, version int, eventType string) {
	m.Applied.WithLabelValues(projection, strconv.Itoa(version), eventType).Inc()
}
