// Package telemetrytest checks the Prometheus metrics a service registers: every name carries
// the ordersys_ prefix and passes client_golang's naming lint (testutil.GatherAndLint, promlint).
// A service's test registers its metrics on a Registry, as its main does on its registry, and
// calls Lint.
package telemetrytest

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Prefix is the prefix of every metric an ordersys service defines.
const Prefix = "ordersys_"

// maxLabels bounds the label count Lint tries when it gives a vector a child.
const maxLabels = 16

// Registry is a prometheus.Registerer for tests: it registers on a fresh registry and remembers
// every collector, so that Lint can give each metric vector a child (a vector without one
// exports nothing, which no lint would see).
type Registry struct {
	reg        *prometheus.Registry
	collectors []prometheus.Collector
}

var _ prometheus.Registerer = (*Registry)(nil)

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{reg: prometheus.NewRegistry()} }

// Register registers c and remembers it.
func (r *Registry) Register(c prometheus.Collector) error {
	if err := r.reg.Register(c); err != nil {
		return err
	}
	r.collectors = append(r.collectors, c)
	return nil
}

// MustRegister registers each collector, panicking on the first error.
func (r *Registry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Unregister unregisters c.
func (r *Registry) Unregister(c prometheus.Collector) bool {
	r.collectors = slices.DeleteFunc(r.collectors, func(x prometheus.Collector) bool { return x == c })
	return r.reg.Unregister(c)
}

// Lint gives every registered vector a child, gathers every metric and fails t for each name
// without Prefix, each problem promlint finds, and each vector that exported nothing. A
// collector of its own that exports nothing yet (no series until it has something to report)
// has only its name checked, as promlint needs the type. Lint fails when fewer than atLeast
// metrics were registered (a sign the test registers nothing).
func (r *Registry) Lint(t testing.TB, atLeast int) {
	t.Helper()
	described := map[string]bool{} // name → is a vector
	for _, c := range r.collectors {
		vector := touch(c)
		for _, name := range describedNames(c) {
			described[name] = vector
		}
	}
	if len(described) < atLeast {
		t.Fatalf("%d metrics registered, want at least %d", len(described), atLeast)
	}
	families, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		delete(described, mf.GetName())
		if !strings.HasPrefix(mf.GetName(), Prefix) {
			t.Errorf("metric %s lacks the %s prefix every ordersys metric has", mf.GetName(), Prefix)
		}
	}
	for name, vector := range described {
		switch {
		case vector:
			t.Errorf("metric vector %s exported nothing, so it was not linted", name)
		case !strings.HasPrefix(name, Prefix):
			t.Errorf("metric %s lacks the %s prefix every ordersys metric has", name, Prefix)
		default:
			t.Logf("metric %s exports nothing yet: only its name was checked", name)
		}
	}
	problems, err := testutil.GatherAndLint(r.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
}

// touch creates one child of c when c is a metric vector (it has GetMetricWithLabelValues),
// trying label counts from 0 until one is accepted, and reports whether c is one.
func touch(c prometheus.Collector) bool {
	m := reflect.ValueOf(c).MethodByName("GetMetricWithLabelValues")
	if !m.IsValid() {
		return false
	}
	for n := 0; n <= maxLabels; n++ {
		values := make([]string, n)
		for i := range values {
			values[i] = fmt.Sprintf("v%d", i)
		}
		out := m.CallSlice([]reflect.Value{reflect.ValueOf(values)})
		if len(out) == 2 && out[1].IsNil() {
			return true
		}
	}
	return true
}

// reFQName finds the name in a Desc's String().
var reFQName = regexp.MustCompile(`fqName: "([^"]+)"`)

// describedNames returns the names of the metrics c describes.
func describedNames(c prometheus.Collector) []string {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	var names []string
	for d := range ch {
		if m := reFQName.FindStringSubmatch(d.String()); m != nil {
			names = append(names, m[1])
		}
	}
	return names
}
