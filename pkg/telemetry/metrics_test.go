package telemetry_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordersys/ordersys/pkg/telemetry"
)

// TestRegisterOrReuse checks that a second identical collector yields the registered one, and
// that a clashing one panics.
func TestRegisterOrReuse(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "x_total", Help: "X."}
	first := telemetry.RegisterOrReuse(reg, prometheus.NewCounterVec(opts, []string{"result"}))
	second := telemetry.RegisterOrReuse(reg, prometheus.NewCounterVec(opts, []string{"result"}))
	if first != second {
		t.Fatal("an identical collector was not reused")
	}
	second.WithLabelValues("ok").Inc()
	if n, err := reg.Gather(); err != nil || len(n) != 1 {
		t.Fatalf("gathered %d families (err %v), want 1", len(n), err)
	}

	defer func() {
		r := recover()
		if msg, _ := r.(string); !strings.HasPrefix(msg, "telemetry: register metrics: ") {
			t.Fatalf("recovered %v, want a register metrics panic", r)
		}
	}()
	telemetry.RegisterOrReuse(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "Other."}, []string{"kind"}))
	t.Fatal("a clashing collector did not panic")
}
