package main

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// service is one of the four ordersys services: its binary and its addresses.
type service struct {
	name    string // binary, log file and pid file name
	grpc    string // ORDERSYS_GRPC_ADDR of its process
	metrics string // ORDERSYS_METRICS_ADDR of its process
}

// binaries are the main packages `build` puts into .state/bin.
var binaries = []string{
	"github.com/ordersys/ordersys/services/command/cmd/command",
	"github.com/ordersys/ordersys/services/command/cmd/migrate",
	"github.com/ordersys/ordersys/services/query/cmd/query",
	"github.com/ordersys/ordersys/services/cdc-relay/cmd/cdc-relay",
	"github.com/ordersys/ordersys/services/projector/cmd/projector",
	"github.com/ordersys/ordersys/services/ordersysctl/cmd/ordersysctl",
}

// stopGroups is the stop order: writers and readers first, then the relay, then the projector.
var stopGroups = [][]string{{"command", "query"}, {"cdc-relay"}, {"projector"}}

// Markers in .state/run of what a run started and its stop therefore stops.
const (
	markerInfra      = "infra.started"
	markerJaeger     = "jaeger.started"
	markerPrometheus = "prometheus.started"
	markerSecure     = "secure" // the services run with TLS (RUN_SECURE=1): status checks over TLS
)

// supervisor holds the settings of one devrun invocation (from the environment) and its output.
type supervisor struct {
	root, state, bin, logs, runDir, secrets, scripts string

	keepInfra, jaeger, prometheus, secure bool
	stopTimeout, healthTimeout            time.Duration
	jaegerUI, prometheusUI                string
	infraCQL, infraKafka                  string // the plaintext servers of infra.sh

	services []service // in start order
	byName   map[string]service

	out, errOut io.Writer
	t0          time.Time
}

// newSupervisor reads the settings from the environment and sets the services' common
// environment (keyspace, servers, trace sampling), which every child process inherits.
func newSupervisor(root string) (*supervisor, error) {
	// The pid check compares a process's argv[0] with a path under root: both must be spelled
	// the same whichever symlink the caller came through.
	if real, err := filepath.EvalSymlinks(root); err == nil {
		root = real
	}
	state := filepath.Join(root, ".state")
	s := &supervisor{
		root: root, state: state,
		bin: filepath.Join(state, "bin"), logs: filepath.Join(state, "logs"),
		runDir: filepath.Join(state, "run"), secrets: filepath.Join(state, "secure"),
		scripts:      filepath.Join(root, "deploy", "local"),
		keepInfra:    os.Getenv("RUN_KEEP_INFRA") == "1",
		jaeger:       cmp.Or(os.Getenv("RUN_JAEGER"), "1") == "1",
		prometheus:   cmp.Or(os.Getenv("RUN_PROMETHEUS"), "1") == "1",
		secure:       os.Getenv("RUN_SECURE") == "1",
		jaegerUI:     cmp.Or(os.Getenv("JAEGER_QUERY_URL"), "http://127.0.0.1:16686"),
		prometheusUI: "http://" + cmp.Or(os.Getenv("PROMETHEUS_ADDR"), "127.0.0.1:9090"),
		t0:           time.Now(),
	}
	var err error
	if s.stopTimeout, err = seconds("RUN_STOP_TIMEOUT", 20); err != nil {
		return nil, err
	}
	if s.healthTimeout, err = seconds("RUN_HEALTH_TIMEOUT", 120); err != nil {
		return nil, err
	}
	s.out = &output{w: os.Stdout, fallback: filepath.Join(s.logs, "run.log")}
	s.errOut = &output{w: os.Stderr, fallback: filepath.Join(s.logs, "run.log")}

	addr := cmp.Or(os.Getenv("INFRA_ADDR"), "127.0.0.1")
	s.infraCQL = addr + ":" + cmp.Or(os.Getenv("INFRA_CQL_PORT"), "9042")
	s.infraKafka = addr + ":" + cmp.Or(os.Getenv("INFRA_KAFKA_PORT"), "9092")
	setDefault("ORDERSYS_CQL_KEYSPACE", "ordersys")
	setDefault("ORDERSYS_CQL_HOSTS", s.infraCQL)
	setDefault("ORDERSYS_KAFKA_BROKERS", s.infraKafka)
	setDefault("ORDERSYS_TRACE_SAMPLE_RATIO", "1.0")

	// Start order; each service waits for what it needs, so any order works. The addresses are
	// API.md's defaults, overridden per service (ORDERSYS_GRPC_ADDR itself is per process).
	for i, name := range []string{"projector", "cdc-relay", "query", "command"} {
		env := "ORDERSYS_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		svc := service{
			name:    name,
			grpc:    cmp.Or(os.Getenv(env+"_GRPC_ADDR"), fmt.Sprintf("127.0.0.1:%d", 50054-i)),
			metrics: cmp.Or(os.Getenv(env+"_METRICS_ADDR"), fmt.Sprintf(":%d", 9104-i)),
		}
		s.services = append(s.services, svc)
	}
	s.byName = make(map[string]service, len(s.services))
	for _, svc := range s.services {
		s.byName[svc.name] = svc
	}
	return s, nil
}

// seconds reads a whole number of seconds from the environment variable name.
func seconds(name string, def int) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return time.Duration(def) * time.Second, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q: want a whole number of seconds", name, v)
	}
	return time.Duration(n) * time.Second, nil
}

// setDefault sets the environment variable name to value unless it is set and not empty.
func setDefault(name, value string) {
	if os.Getenv(name) == "" {
		os.Setenv(name, value)
	}
}

// say prints one progress line, prefixed with the seconds since devrun started.
func (s *supervisor) say(format string, args ...any) {
	w := s.out
	if strings.HasPrefix(format, "ERROR") || strings.HasPrefix(format, "WARNING") {
		w = s.errOut
	}
	fmt.Fprintf(w, "[run +%3ds] %s\n", int(time.Since(s.t0).Seconds()), fmt.Sprintf(format, args...))
}

// rel returns path relative to the repository root, for messages.
func (s *supervisor) rel(path string) string {
	return strings.TrimPrefix(path, s.root+string(filepath.Separator))
}

// output writes to w until a write fails (a reader such as `tee` died of the same Ctrl-C), then
// appends everything to the file fallback instead.
type output struct {
	mu       sync.Mutex
	w        io.Writer
	fallback string
}

// Write implements io.Writer; it never fails, so that a stop is never cut short by its output.
func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, err := o.w.Write(p); err != nil && o.fallback != "" {
		if err := os.MkdirAll(filepath.Dir(o.fallback), 0o755); err == nil {
			if f, err := os.OpenFile(o.fallback, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
				o.w, o.fallback = f, ""
				_, _ = f.Write(p)
			}
		}
	}
	return len(p), nil
}
