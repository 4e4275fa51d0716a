package telemetrytest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordersys/ordersys/pkg/telemetry/telemetrytest"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...) }

func (r *recorder) Logf(string, ...any) {}

// TestLintFindsBadNames: names without the prefix (the gRPC server metrics as they were), a
// counter without _total and a vector that only has label values at run time are reported; a
// well-named set passes.
func TestLintFindsBadNames(t *testing.T) {
	r := telemetrytest.NewRegistry()
	r.MustRegister(
		prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grpc_server_handled_total", Help: "RPCs."}, []string{"grpc_code"}),
		prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ordersys_things", Help: "Things."}, []string{"a", "b", "c"}),
		prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ordersys_wait_seconds", Help: "Waits."}),
	)
	rec := &recorder{TB: t}
	r.Lint(rec, 3)
	got := strings.Join(rec.errors, "\n")
	for _, want := range []string{"grpc_server_handled_total lacks the ordersys_ prefix", "ordersys_things: counter metrics should have \"_total\" suffix"} {
		if !strings.Contains(got, want) {
			t.Errorf("Lint reported:\n%s\nnothing about %q", got, want)
		}
	}
	if len(rec.errors) != 2 {
		t.Errorf("Lint reported %d problems, want 2:\n%s", len(rec.errors), got)
	}

	good := telemetrytest.NewRegistry()
	good.MustRegister(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ordersys_queue_depth", Help: "Depth."}, []string{"queue"}))
	rec = &recorder{TB: t}
	good.Lint(rec, 1)
	if len(rec.errors) != 0 {
		t.Errorf("a well-named metric: %v", rec.errors)
	}
}
