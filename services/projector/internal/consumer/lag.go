package consumer

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// lagCollector exports ordersys_projector_lag_seconds: per partition this projector consumes,
// the age of the oldest message it has read and not yet applied (now minus the record
// timestamp), 0 when it has applied everything it read. The age is taken at scrape time, so a
// partition stuck on one message shows a lag that grows. A partition whose messages the
// consumer has not read yet (a reader behind the broker) shows in
// ordersys_projector_consumer_lag_messages and in the admin status (lag_seconds, read from the
// brokers); a partition that changes owner moves its series to the new owner.
type lagCollector struct {
	desc    *prometheus.Desc
	mu      sync.Mutex
	windows map[lagKey]*offsetWindow
}

// lagKey is a series' labels.
type lagKey struct{ projection, version, topic, partition string }

func newLagCollector() *lagCollector {
	return &lagCollector{
		desc: prometheus.NewDesc("ordersys_projector_lag_seconds",
			"Age of the oldest message of a partition this projector has read and not yet applied (now minus its record timestamp); 0 when caught up.",
			[]string{"projection", "version", "topic", "partition"}, nil),
		windows: map[lagKey]*offsetWindow{},
	}
}

// track exports the lag of a partition's window until the returned function is called.
func (l *lagCollector) track(k lagKey, w *offsetWindow) (untrack func()) {
	l.mu.Lock()
	l.windows[k] = w
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		if l.windows[k] == w {
			delete(l.windows, k)
		}
		l.mu.Unlock()
	}
}

// Describe implements prometheus.Collector.
func (l *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- l.desc }

// Collect implements prometheus.Collector.
func (l *lagCollector) Collect(ch chan<- prometheus.Metric) {
	for k, age := range l.ages(time.Now()) {
		ch <- prometheus.MustNewConstMetric(l.desc, prometheus.GaugeValue, age, k.projection, k.version, k.topic, k.partition)
	}
}

// ages returns every tracked partition's lag at now, in seconds.
func (l *lagCollector) ages(now time.Time) map[lagKey]float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[lagKey]float64, len(l.windows))
	for k, w := range l.windows {
		out[k] = 0
		if t, ok := w.oldest(); ok {
			out[k] = max(now.Sub(t).Seconds(), 0)
		}
	}
	return out
}
