package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordersys/ordersys/pkg/telemetry"
)

func TestSetupWithoutEndpointGivesValidSpans(t *testing.T) {
	shutdown, err := telemetry.Setup(context.Background(), telemetry.Options{ServiceName: "test", SampleRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })

	ctx, span := otel.Tracer("test").Start(context.Background(), "op")
	defer span.End()
	if !span.SpanContext().IsValid() || !span.SpanContext().IsSampled() {
		t.Fatalf("span context %v is not valid and sampled", span.SpanContext())
	}
	tp, _ := telemetry.TraceContextFromContext(ctx)
	if tp == "" {
		t.Fatal("no traceparent for a live span")
	}
}

func TestSetupWithEndpoint(t *testing.T) {
	// The exporter connects lazily, so Setup succeeds with no collector listening.
	shutdown, err := telemetry.Setup(context.Background(), telemetry.Options{
		ServiceName: "test", ServiceVersion: "v0", OTLPEndpoint: "127.0.0.1:1", SampleRatio: 0.5,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = shutdown(ctx) // export to a closed port may fail; shutdown must return in time
}

func TestSetupRejectsBadOptions(t *testing.T) {
	for _, o := range []telemetry.Options{
		{ServiceName: ""},
		{ServiceName: "x", SampleRatio: 1.5},
		{ServiceName: "x", SampleRatio: -0.1},
	} {
		if _, err := telemetry.Setup(context.Background(), o); err == nil {
			t.Errorf("Setup(%+v) succeeded", o)
		}
	}
}

func TestTraceContextRoundTrip(t *testing.T) {
	tests := []struct {
		name        string
		traceparent string
		tracestate  string
	}{
		{"sampled with state", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"},
		{"not sampled", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := telemetry.ContextWithTraceContext(context.Background(), tt.traceparent, tt.tracestate)
			sc := trace.SpanContextFromContext(ctx)
			if !sc.IsValid() || !sc.IsRemote() {
				t.Fatalf("span context %+v is not a valid remote one", sc)
			}
			tp, ts := telemetry.TraceContextFromContext(ctx)
			if tp != tt.traceparent || ts != tt.tracestate {
				t.Fatalf("round trip gave (%q, %q), want (%q, %q)", tp, ts, tt.traceparent, tt.tracestate)
			}
		})
	}
}

func TestTraceContextContinuesTrace(t *testing.T) {
	shutdown, err := telemetry.Setup(context.Background(), telemetry.Options{ServiceName: "test", SampleRatio: 0})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })

	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := telemetry.ContextWithTraceContext(context.Background(), parent, "")
	_, span := otel.Tracer("test").Start(ctx, "consume")
	defer span.End()
	sc := span.SpanContext()
	if sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("trace id %s, want the parent's", sc.TraceID())
	}
	if !sc.IsSampled() {
		t.Fatal("a sampled parent must keep the child sampled even at ratio 0")
	}
}

func TestTraceContextEmptyAndMalformed(t *testing.T) {
	for _, tp := range []string{"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"} {
		ctx := telemetry.ContextWithTraceContext(context.Background(), tp, "")
		if trace.SpanContextFromContext(ctx).IsValid() {
			t.Errorf("%q gave a valid span context", tp)
		}
		if got, _ := telemetry.TraceContextFromContext(ctx); got != "" {
			t.Errorf("%q rendered as %q", tp, got)
		}
	}
}

func TestLoggerAddsTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	log := telemetry.NewLogger(&buf, "command", "debug")
	ctx := telemetry.ContextWithTraceContext(context.Background(),
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "")
	log.DebugContext(ctx, "with span", "k", "v")
	log.Info("without span")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", buf.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if first["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" || first["span_id"] != "00f067aa0ba902b7" ||
		first["service"] != "command" || first["k"] != "v" {
		t.Errorf("first line %v", first)
	}
	if _, ok := second["trace_id"]; ok {
		t.Errorf("second line has a trace id: %v", second)
	}
}

func TestLoggerLevel(t *testing.T) {
	tests := []struct {
		level     string
		wantDebug bool
		wantInfo  bool
	}{
		{"debug", true, true}, {"INFO", false, true}, {"warn", false, false}, {"bogus", false, true},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		log := telemetry.NewLogger(&buf, "s", tt.level)
		log.Debug("d")
		log.Info("i")
		if got := strings.Contains(buf.String(), `"msg":"d"`); got != tt.wantDebug {
			t.Errorf("level %q: debug logged = %v", tt.level, got)
		}
		if got := strings.Contains(buf.String(), `"msg":"i"`); got != tt.wantInfo {
			t.Errorf("level %q: info logged = %v", tt.level, got)
		}
	}
	if _, err := telemetry.ParseLevel("loud"); err == nil {
		t.Error("ParseLevel accepted loud")
	}
}

func TestServeMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := telemetry.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "ordersys_test_total", Help: "test counter"})
	reg.MustRegister(c)
	c.Add(3)

	ready := new(telemetry.Readiness)
	srv, err := telemetry.ServeMetrics(ctx, "127.0.0.1:0", reg, ready, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := get(t, "http://"+srv.Addr+"/metrics")
	for _, want := range []string{"ordersys_test_total 3", "go_goroutines", "process_"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if got := get(t, "http://"+srv.Addr+"/healthz"); strings.TrimSpace(got) != "ok" {
		t.Errorf("/healthz = %q", got)
	}
	readyz := func() int {
		t.Helper()
		res, err := http.Get("http://" + srv.Addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		return res.StatusCode
	}
	if code := readyz(); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before a check is set: %d, want 503", code)
	}
	var failing atomic.Bool
	ready.Set(func(context.Context) error {
		if failing.Load() {
			return errors.New("cassandra does not answer")
		}
		return nil
	})
	if code := readyz(); code != http.StatusOK {
		t.Errorf("/readyz with a passing check: %d, want 200", code)
	}
	failing.Store(true)
	if code := readyz(); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with a failing check: %d, want 503", code)
	}

	// The address is now taken: a second server must fail synchronously.
	if _, err := telemetry.ServeMetrics(ctx, srv.Addr, reg, nil, nil); err == nil {
		t.Error("second ServeMetrics on the same address succeeded")
	}

	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", srv.Addr, 100*time.Millisecond)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("metrics server still accepting after ctx was cancelled")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(b)
}
