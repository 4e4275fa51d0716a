package consumer

import (
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/segmentio/kafka-go"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// HealthServiceProgress is the gRPC health service that is NOT_SERVING while any partition of
// any projection cannot progress (a message has kept failing for StallAfter). It is a named
// service, not the overall "" one the probes check: a stalled partition is a reason to alert,
// not to restart the process (which would replay the same message).
const HealthServiceProgress = "ordersys.projector.progress"

// DefaultStallAfter is how long one message may keep failing before its partition counts as
// stalled.
const DefaultStallAfter = 30 * time.Second

// Stalls collects the stalled partitions of every consumer of the process and reports them on
// HealthServiceProgress. The zero of *Stalls (nil) reports nothing.
type Stalls struct {
	health grpcx.HealthSetter
	log    *slog.Logger

	mu      sync.Mutex
	stalled map[string]bool
}

// NewStalls returns a collector reporting to h (HealthServiceProgress starts SERVING).
func NewStalls(h grpcx.HealthSetter, log *slog.Logger) *Stalls {
	if log == nil {
		log = slog.Default()
	}
	h.SetServingStatus(HealthServiceProgress, healthpb.HealthCheckResponse_SERVING)
	return &Stalls{health: h, log: log, stalled: map[string]bool{}}
}

// Stalled returns the partitions stalled now, as "<projection>.v<version> <topic>/<partition>".
func (s *Stalls) Stalled() []string {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.stalled))
	for k := range s.stalled {
		out = append(out, k)
	}
	return out
}

func (s *Stalls) set(key string, stalled bool) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if stalled {
		s.stalled[key] = true
	} else {
		delete(s.stalled, key)
	}
	status := healthpb.HealthCheckResponse_SERVING
	if len(s.stalled) > 0 {
		status = healthpb.HealthCheckResponse_NOT_SERVING
	}
	s.health.SetServingStatus(HealthServiceProgress, status)
}

// stallWatch follows the retries of one message: once it has failed for StallAfter, its
// partition is reported stalled until the message is done with (or abandoned).
type stallWatch struct {
	c       *Consumer
	m       kafka.Message
	since   time.Time
	stalled bool
}

func (c *Consumer) stallWatch(m kafka.Message) *stallWatch { return &stallWatch{c: c, m: m} }

func (w *stallWatch) key() string {
	return w.c.cfg.Projection + ".v" + strconv.Itoa(w.c.cfg.Version) + " " + w.m.Topic + "/" + strconv.Itoa(w.m.Partition)
}

// failed is called after each failed attempt.
func (w *stallWatch) failed() {
	if w.since.IsZero() {
		w.since = time.Now()
	}
	if w.stalled || time.Since(w.since) < w.c.cfg.StallAfter {
		return
	}
	w.stalled = true
	w.c.stalls.add(w.key(), 1, w.report)
	w.c.cfg.Logger.Error("partition stalled: a message keeps failing", "topic", w.m.Topic, "partition", w.m.Partition,
		"offset", w.m.Offset, "failing_for", time.Since(w.since).Round(time.Millisecond))
}

// done is called when the message is done with or abandoned.
func (w *stallWatch) done() {
	if !w.stalled {
		return
	}
	w.c.stalls.add(w.key(), -1, func(bool) {
		w.report(false)
		w.c.cfg.Logger.Info("partition progresses again", "topic", w.m.Topic, "partition", w.m.Partition, "offset", w.m.Offset)
	})
}

// report sets the partition's stall gauge and health entry.
func (w *stallWatch) report(stalled bool) {
	v := 0.0
	if stalled {
		v = 1
	}
	w.c.cfg.Metrics.Stalled.WithLabelValues(w.c.labels[0], w.c.labels[1], w.m.Topic, strconv.Itoa(w.m.Partition)).Set(v)
	w.c.cfg.Stalls.set(w.key(), stalled)
}

// stallCounts counts, per partition, the messages stalled now (up to two per lane: the lane's
// message and the tail of the message before it, keylanes.go).
type stallCounts struct {
	mu sync.Mutex
	n  map[string]int
}

// add changes the count of key by delta; when the partition becomes stalled (0 → 1) or stops
// being stalled (1 → 0) it calls changed with the new state, under the lock, so that the gauge
// and the health entry follow the count whatever the order of the lanes.
func (s *stallCounts) add(key string, delta int, changed func(stalled bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = map[string]int{}
	}
	before := s.n[key]
	s.n[key] += delta
	after := s.n[key]
	if after <= 0 {
		delete(s.n, key)
	}
	if (before > 0) != (after > 0) {
		changed(after > 0)
	}
}
