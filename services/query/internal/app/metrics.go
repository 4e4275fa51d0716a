package app

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordersys/ordersys/pkg/telemetry"
)

// Outcomes of a wait for a read-model version, the values of the outcome label of
// ordersys_query_read_model_wait_seconds.
const (
	WaitReached  = "reached"   // the read model reached the version
	WaitTimeout  = "timeout"   // the call's deadline (or MaxWait) came first
	WaitCanceled = "canceled"  // the caller went away
	WaitNotFound = "not_found" // the order does not exist
	WaitError    = "error"     // the read model could not be read
)

// Starting points of a rebuild, the values of the start label of ordersys_query_rebuilds_total.
const (
	StartSnapshot = "snapshot" // from a snapshot plus the events after it
	StartScratch  = "scratch"  // from the first event
)

// Metrics are the query service's own Prometheus metrics (pkg/grpcx counts the RPCs).
type Metrics struct {
	minVersion *prometheus.CounterVec
	waits      prometheus.Counter
	timeouts   prometheus.Counter
	waitTime   *prometheus.HistogramVec
	polls      prometheus.Histogram
	rebuilds   *prometheus.CounterVec
	replayed   *prometheus.HistogramVec
}

// NewMetrics creates the metrics and registers them on reg (nil: not registered). Registering
// twice on one registry reuses the collectors already there.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		minVersion: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersys_query_min_version_requests_total",
			Help: "GetOrder calls with min_version, by whether the first read already satisfied it (ready) or the call had to wait (waited).",
		}, []string{"result"}),
		waits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordersys_query_read_model_waits_total",
			Help: "GetOrder calls that waited for the read model to reach a version (min_version, or a just-created order not projected yet).",
		}),
		timeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordersys_query_read_model_wait_timeouts_total",
			Help: "Waits for a read-model version that ended with DEADLINE_EXCEEDED.",
		}),
		waitTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ordersys_query_read_model_wait_seconds",
			Help:    "Time GetOrder waited for the read model to reach a version, by outcome (reached, timeout, canceled, not_found, error).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"outcome"}),
		polls: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ordersys_query_read_model_wait_polls",
			Help:    "Reads of the read model one wait for a version made.",
			Buckets: []float64{1, 2, 3, 5, 10, 20, 50, 100, 200},
		}),
		rebuilds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersys_query_rebuilds_total",
			Help: "GetOrderAt rebuilds from the event store, by point kind (version, time) and start (snapshot, scratch).",
		}, []string{"point", "start"}),
		replayed: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ordersys_query_rebuild_events",
			Help:    "Events replayed by one GetOrderAt rebuild, by start (snapshot, scratch).",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000},
		}, []string{"start"}),
	}
	if reg != nil {
		m.minVersion = telemetry.RegisterOrReuse(reg, m.minVersion)
		m.waits = telemetry.RegisterOrReuse(reg, m.waits)
		m.timeouts = telemetry.RegisterOrReuse(reg, m.timeouts)
		m.waitTime = telemetry.RegisterOrReuse(reg, m.waitTime)
		m.polls = telemetry.RegisterOrReuse(reg, m.polls)
		m.rebuilds = telemetry.RegisterOrReuse(reg, m.rebuilds)
		m.replayed = telemetry.RegisterOrReuse(reg, m.replayed)
	}
	return m
}

func (m *Metrics) observeWait(outcome string, polls int, d time.Duration) {
	m.waitTime.WithLabelValues(outcome).Observe(d.Seconds())
	m.polls.Observe(float64(polls))
	if outcome == WaitTimeout {
		m.timeouts.Inc()
	}
}

func (m *Metrics) observeRebuild(point, start string, events int) {
	m.rebuilds.WithLabelValues(point, start).Inc()
	m.replayed.WithLabelValues(start).Observe(float64(events))
}
