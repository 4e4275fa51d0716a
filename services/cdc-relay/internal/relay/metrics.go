package relay

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the relay's Prometheus metrics (namespace ordersys_relay).
type Metrics struct {
	Published      *prometheus.CounterVec // by topic
	Failed         *prometheus.CounterVec // publish attempts that failed, by kind (transient, permanent, rejected)
	Retried        prometheus.Counter     // publish attempts that repeat an earlier failed one
	DeadLettered   *prometheus.CounterVec // by topic and reason
	Duplicates     *prometheus.CounterVec // changes dropped because already published, by cursor
	Divergent      prometheus.Counter     // rows at a published sequence with another event id
	GapFilled      prometheus.Counter     // events published from event_store to fill a gap
	BreakerState   prometheus.Gauge       // 0 closed, 1 half-open, 2 open
	BreakerChanges *prometheus.CounterVec // transitions, by new state
	PublishDelay   prometheus.Histogram   // commit → broker ack
	CheckpointAge  *prometheus.GaugeVec   // now − position of the oldest shard's checkpoint, by cursor
	RowsRead       *prometheus.CounterVec // by cursor
	InFlight       prometheus.Gauge       // changes submitted and not settled
	Leader         prometheus.Gauge       // 1 while this instance publishes (holds a lease)
	ShardsHeld     prometheus.Gauge       // outbox shards this instance publishes
	Recovered      *prometheus.CounterVec // intents settled by recovery, by outcome
	StoreErrors    *prometheus.CounterVec // CQL failures, by operation
	DependencyUp   *prometheus.GaugeVec   // 1 when the dependency answers, by dependency (cql, kafka)
	SourceRestarts *prometheus.CounterVec // by source
	mu             sync.Mutex
	oldest         map[*func() time.Time]func() time.Time // by running pipeline
	ages           map[any]map[string]float64             // checkpoint age by running source, by cursor
	lagFunc        prometheus.GaugeFunc
	now            func() time.Time
}

// NewMetrics creates the metrics and registers them on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns = "ordersys_relay"
	m := &Metrics{
		Published: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "published_total",
			Help: "Events acknowledged by the broker, by topic."}, []string{"topic"}),
		Failed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "publish_failures_total",
			Help: "Publish attempts that failed, by kind: transient (retried), permanent (dead-lettered), rejected (circuit breaker open), fenced (the lease's term ran out: not sent)."}, []string{"kind"}),
		Retried: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "publish_retries_total",
			Help: "Publish attempts that repeat a failed one."}),
		DeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "dead_lettered_total",
			Help: "Messages sent to the dead-letter path, by original topic and reason."}, []string{"topic", "reason"}),
		Duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "duplicates_dropped_total",
			Help: "Outbox changes dropped because their event was already published, by cursor."}, []string{"cursor"}),
		Divergent: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "divergent_events_total",
			Help: "Outbox rows at an already-published sequence whose event id is not the published or stored event's (logged, not published)."}),
		GapFilled: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "gap_filled_total",
			Help: "Events read from event_store to fill a sequence gap before a later event."}),
		BreakerState: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "breaker_state",
			Help: "State of the circuit breaker around the broker: 0 closed, 1 half-open, 2 open."}),
		BreakerChanges: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "breaker_transitions_total",
			Help: "Circuit breaker state changes, by the new state."}, []string{"to"}),
		PublishDelay: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "publish_delay_seconds",
			Help:    "Time from the outbox row's commit to the broker's acknowledgement.",
			Buckets: []float64{.05, .1, .2, .3, .4, .5, .75, 1, 2, 5, 10, 30, 60, 300}}),
		CheckpointAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "checkpoint_age_seconds",
			Help: "Now minus the time up to which every outbox row is settled, for the shard furthest behind, by cursor."}, []string{"cursor"}),
		RowsRead: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "rows_read_total",
			Help: "Outbox changes read, by cursor."}, []string{"cursor"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "in_flight",
			Help: "Changes handed to the pipeline and not yet settled."}),
		ShardsHeld: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "shards_held",
			Help: "Outbox shards this instance publishes (it holds their leases; all of them under the scylla-cdc source's single lease)."}),
		Leader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "leader",
			Help: "1 while this instance publishes: it holds the lease of at least one outbox shard (or, with the scylla-cdc source, the single relay lease)."}),
		Recovered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "recovered_intents_total",
			Help: "Append intents settled by the recovery sweeper, by outcome (committed, discarded; poison: cannot be settled, left in pending_appends)."}, []string{"outcome"}),
		StoreErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "store_errors_total",
			Help: "CQL operations that failed, by operation."}, []string{"op"}),
		DependencyUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "dependency_up",
			Help: "1 when the dependency answered the last health probe, by dependency."}, []string{"dependency"}),
		SourceRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "source_restarts_total",
			Help: "Times a source stopped with an error and was restarted, by source."}, []string{"source"}),
		now: time.Now,
	}
	m.lagFunc = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "lag_seconds",
		Help: "Age of the oldest event the relay has read and not yet published (0 when caught up)."}, m.lag)
	if reg != nil {
		reg.MustRegister(m.Published, m.Failed, m.Retried, m.DeadLettered, m.Duplicates, m.Divergent, m.GapFilled, m.BreakerState,
			m.BreakerChanges, m.PublishDelay, m.CheckpointAge, m.RowsRead, m.InFlight, m.Leader, m.ShardsHeld, m.Recovered,
			m.StoreErrors, m.DependencyUp, m.SourceRestarts, m.lagFunc)
	}
	for _, k := range []string{"transient", "permanent", "rejected"} {
		m.Failed.WithLabelValues(k)
	}
	for _, s := range []string{"closed", "half-open", "open"} {
		m.BreakerChanges.WithLabelValues(s)
	}
	return m
}

// lag is the age of the oldest change the running pipelines hold unsettled, 0 when they hold
// none (caught up, or not leading). Rows their sources have not read yet show in
// checkpoint_age_seconds instead.
func (m *Metrics) lag() float64 {
	m.mu.Lock()
	var oldest time.Time
	for _, f := range m.oldest {
		if t := f(); !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
	}
	m.mu.Unlock()
	if oldest.IsZero() {
		return 0
	}
	return max(m.now().Sub(oldest).Seconds(), 0)
}

// addPipeline makes the lag metric read the oldest unsettled commit time of a running pipeline
// from f, until the returned function is called (several pipelines run at once when a relay
// holds several shards).
func (m *Metrics) addPipeline(f func() time.Time) (remove func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.oldest == nil {
		m.oldest = map[*func() time.Time]func() time.Time{}
	}
	key := &f
	m.oldest[key] = f
	return func() {
		m.mu.Lock()
		delete(m.oldest, key)
		m.mu.Unlock()
	}
}

// ReportCheckpointAge records how far behind the clock cursor's oldest checkpoint is in one
// running source (src: the source itself) and sets checkpoint_age_seconds{cursor} to the
// oldest across the running sources (a relay holding several shards runs one poller each).
func (m *Metrics) ReportCheckpointAge(src any, cursor string, seconds float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ages == nil {
		m.ages = map[any]map[string]float64{}
	}
	if m.ages[src] == nil {
		m.ages[src] = map[string]float64{}
	}
	m.ages[src][cursor] = seconds
	m.setAgesLocked(cursor)
}

// ForgetCheckpointAges removes a source that stopped from checkpoint_age_seconds.
func (m *Metrics) ForgetCheckpointAges(src any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cursors := m.ages[src]
	delete(m.ages, src)
	for c := range cursors {
		m.setAgesLocked(c)
	}
}

func (m *Metrics) setAgesLocked(cursor string) {
	oldest, found := 0.0, false
	for _, cs := range m.ages {
		if a, ok := cs[cursor]; ok {
			oldest, found = max(oldest, a), true
		}
	}
	if !found {
		m.CheckpointAge.DeleteLabelValues(cursor)
		return
	}
	m.CheckpointAge.WithLabelValues(cursor).Set(oldest)
}

// observePublished records a published event committed at t.
func (m *Metrics) observePublished(topic string, committed time.Time) {
	m.Published.WithLabelValues(topic).Inc()
	if committed.IsZero() {
		return
	}
	m.PublishDelay.Observe(m.now().Sub(committed).Seconds())
}
