package app

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/telemetry"
)

// Outcomes of a command, the values of the outcome label of ordersys_commands_total.
const (
	OutcomeOK            = "ok"             // events appended
	OutcomeDuplicate     = "duplicate"      // repeated command id: first outcome returned, nothing appended
	OutcomeInvalid       = "invalid"        // bad input (or a command id reused for other content)
	OutcomeRejected      = "rejected"       // business rule violated
	OutcomeConflict      = "conflict"       // version conflict reported to the client
	OutcomeNotFound      = "not_found"      // unknown aggregate
	OutcomeAlreadyExists = "already_exists" // creation of an existing aggregate
	OutcomeUnavailable   = "unavailable"    // the store did not answer
	OutcomeCanceled      = "canceled"       // the caller's context ended
	OutcomeError         = "error"          // anything else (a bug)
)

// Metrics are the command service's Prometheus metrics.
type Metrics struct {
	commands *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	conflict *prometheus.CounterVec
	retries  *prometheus.CounterVec
	appends  *prometheus.HistogramVec
	snapshot *prometheus.CounterVec
	cached   *prometheus.CounterVec

	presumedNew *prometheus.CounterVec
}

// Results of a command decided on a cached aggregate, the values of the result label of
// ordersys_command_cached_decisions_total.
const (
	cachedAppended = "appended" // decided and appended without a read
	cachedStale    = "stale"    // the append's condition failed: read, decided again
	cachedRefused  = "refused"  // the cached state refused the command or appended nothing: read, decided again
)

// Results of a creation decided on a new aggregate without reading it, the values of the
// result label of ordersys_command_presumed_new_total.
const (
	newAppended = "appended" // decided and appended without a read
	newExists   = "exists"   // the stream exists (a lost race, a repeat, another aggregate's id): read, answered
	newRecalled = "recalled" // the command id is remembered as rejected (or the recall failed): read, answered
	newRefused  = "refused"  // preparing, deciding or the store refused before writing, or nothing to append: read, decided again
	newUnknown  = "unknown"  // the append's outcome is unknown: returned (Unavailable)
)

// NewMetrics creates the metrics and registers them on reg (nil: not registered). Registering
// twice on one registry reuses the collectors already there.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	buckets := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m := &Metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersys_commands_total",
			Help: "Commands handled, by command type and outcome (ok, duplicate, invalid, rejected, conflict, not_found, already_exists, unavailable, canceled, error).",
		}, []string{"command", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ordersys_command_duration_seconds",
			Help:    "Time to execute a command (load, decide, append, retries included), by command type and outcome.",
			Buckets: buckets,
		}, []string{"command", "outcome"}),
		conflict: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersys_command_conflicts_total",
			Help: "Appends that lost an optimistic-concurrency race, by command type.",
		}, []string{"command"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersys_command_retries_total",
			Help: "Commands decided again after a lost race, by command type.",
		}, []string{"command"}),
		appends: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ordersys_event_store_append_duration_seconds",
			Help:    "Time of one event-store append, by aggregate type and result (ok, conflict, error).",
			Buckets: buckets,
		}, []string{"aggregate_type", "result"}),
		snapshot: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersys_snapshots_total",
			Help: "Snapshots written in the background, by aggregate type and result (ok, error).",
		}, []string{"aggregate_type", "result"}),
		cached: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersys_command_cached_decisions_total",
			Help: "Commands decided on a cached aggregate without reading the store, by command type and result (appended; stale: another writer got there first, decided again after a read; refused: decided again after a read).",
		}, []string{"command", "result"}),
		presumedNew: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersys_command_presumed_new_total",
			Help: "Creations decided on a new aggregate without reading it, by command type and result (appended; exists: the stream exists, answered after a read; recalled: the command id was rejected before, or the recall failed, answered after a read; refused: decided again after a read; unknown: the append's outcome is unknown).",
		}, []string{"command", "result"}),
	}
	if reg != nil {
		m.commands = telemetry.RegisterOrReuse(reg, m.commands)
		m.latency = telemetry.RegisterOrReuse(reg, m.latency)
		m.conflict = telemetry.RegisterOrReuse(reg, m.conflict)
		m.retries = telemetry.RegisterOrReuse(reg, m.retries)
		m.appends = telemetry.RegisterOrReuse(reg, m.appends)
		m.snapshot = telemetry.RegisterOrReuse(reg, m.snapshot)
		m.cached = telemetry.RegisterOrReuse(reg, m.cached)
		m.presumedNew = telemetry.RegisterOrReuse(reg, m.presumedNew)
	}
	return m
}

func (m *Metrics) observeCommand(command, outcome string, d time.Duration) {
	m.commands.WithLabelValues(command, outcome).Inc()
	m.latency.WithLabelValues(command, outcome).Observe(d.Seconds())
}

func (m *Metrics) observeAppend(aggregateType string, err error, d time.Duration) {
	result := "ok"
	switch {
	case errors.Is(err, es.ErrConcurrencyConflict), errors.Is(err, es.ErrAlreadyExists):
		result = "conflict"
	case err != nil:
		result = "error"
	}
	m.appends.WithLabelValues(aggregateType, result).Observe(d.Seconds())
}

// Outcome classifies the result of a command for metrics and logs.
func Outcome(err error, duplicate bool) string {
	switch {
	case err == nil && duplicate:
		return OutcomeDuplicate
	case err == nil:
		return OutcomeOK
	case errors.Is(err, es.ErrCommandIDReused), errors.Is(err, es.ErrInvalidArgument):
		return OutcomeInvalid
	case errors.Is(err, es.ErrRuleViolation):
		return OutcomeRejected
	case errors.Is(err, es.ErrConcurrencyConflict):
		return OutcomeConflict
	case errors.Is(err, es.ErrNotFound):
		return OutcomeNotFound
	case errors.Is(err, es.ErrAlreadyExists):
		return OutcomeAlreadyExists
	case errors.Is(err, es.ErrUnavailable):
		return OutcomeUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return OutcomeCanceled
	default:
		return OutcomeError
	}
}
