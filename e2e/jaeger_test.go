package e2e_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// jaegerConfig is a Jaeger v2 all-in-one configuration with in-memory storage and nothing but an
// OTLP/gRPC receiver and the query API, on ports chosen by the test: it runs beside a Jaeger of
// `make run` (which holds the default ports) without a clash.
const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: memstore
    enable_tracing: false
    http:
      endpoint: %s
    grpc:
      endpoint: %s
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

// tracingRequired says whether the tracing checks must run: under CI (CI=true or CI=1, as
// `make e2e-tools` decides too) a missing Jaeger fails them instead of skipping them.
func tracingRequired() bool {
	ci := os.Getenv("CI")
	return ci == "true" || ci == "1"
}

// startJaeger starts the Jaeger binary built by deploy/local/jaeger.sh (E2E_JAEGER_BIN overrides)
// with jaegerConfig. A missing binary does not stop the start: jaegerSkip then says why, and only
// the tracing checks skip (or fail, under CI: tracingRequired). A binary that does not start is an
// error.
func (s *system) startJaeger() error {
	bin := os.Getenv("E2E_JAEGER_BIN")
	if bin == "" {
		bin = filepath.Join(s.root, ".state", "tools", "bin", "jaeger")
	}
	if _, err := os.Stat(bin); err != nil {
		s.jaegerSkip = fmt.Sprintf("no Jaeger binary at %s (deploy/local/jaeger.sh build, run by `make e2e-tools`, builds it): %v", rel(s.root, bin), err)
		if tracingRequired() {
			s.logf("ERROR: %s; traces are not exported and, under CI, the tracing checks fail", s.jaegerSkip)
		} else {
			s.logf("WARNING: %s; traces are not exported and the tracing checks skip (under CI=true they fail)", s.jaegerSkip)
		}
		return nil
	}
	queryHTTP, queryGRPC := freeAddr(), freeAddr()
	s.jaegerOTLP = freeAddr()
	s.jaegerURL = "http://" + queryHTTP
	cfg := filepath.Join(s.runDir, "jaeger.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, jaegerConfig, queryHTTP, queryGRPC, s.jaegerOTLP), 0o644); err != nil {
		return err
	}
	p, err := s.spawn("jaeger", bin, []string{"--config", cfg}, os.Environ())
	if err != nil {
		return err
	}
	s.jaeger = p
	err = eventually(jaegerTimeout, 200*time.Millisecond, func() error {
		if !p.running() {
			return fmt.Errorf("jaeger exited during start-up (%v):\n%s", p.err, tail(p.log, 30))
		}
		resp, err := http.Get(s.jaegerURL + "/api/services")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /api/services: %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("jaeger (%s) did not answer %s/api/services within %s: %w", rel(s.root, bin), s.jaegerURL, jaegerTimeout, err)
	}
	s.logf("jaeger (pid %d) query API %s, OTLP gRPC %s", p.cmd.Process.Pid, s.jaegerURL, s.jaegerOTLP)
	return nil
}

// jaegerTrace is the part of the Jaeger query API's trace JSON (/api/traces) the test reads.
type jaegerTrace struct {
	TraceID string `json:"traceID"`
	Spans   []struct {
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		ProcessID     string `json:"processID"`
		Tags          []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"tags"`
	} `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
		// Tags are the resource attributes of the process (service.version, …).
		Tags []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"tags"`
	} `json:"processes"`
}

// processTags returns the tags (resource attributes) of the service's processes in the trace;
// a service with more than one process (replicas, restarts) shows those of any.
func (tr jaegerTrace) processTags(service string) map[string]string {
	out := map[string]string{}
	for _, p := range tr.Processes {
		if p.ServiceName != service {
			continue
		}
		for _, tag := range p.Tags {
			out[tag.Key] = fmt.Sprint(tag.Value)
		}
	}
	return out
}

// services returns, per service name, the operations of the trace's spans.
func (tr jaegerTrace) services() map[string][]string {
	out := map[string][]string{}
	for _, sp := range tr.Spans {
		name := tr.Processes[sp.ProcessID].ServiceName
		out[name] = append(out[name], sp.OperationName)
	}
	return out
}

// tagged returns, per service name, the operations of spans carrying tag key = value.
func (tr jaegerTrace) tagged(key, value string) map[string][]string {
	out := map[string][]string{}
	for _, sp := range tr.Spans {
		for _, tag := range sp.Tags {
			if tag.Key == key && fmt.Sprint(tag.Value) == value {
				name := tr.Processes[sp.ProcessID].ServiceName
				out[name] = append(out[name], sp.OperationName)
				break
			}
		}
	}
	return out
}

// jaegerGet GETs path?query from the Jaeger query API and decodes its {"data": [...]} answer.
func (s *system) jaegerGet(path string, query url.Values) ([]jaegerTrace, error) {
	u := s.jaegerURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	var body struct {
		Data []jaegerTrace `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("GET %s: decode: %w", u, err)
	}
	return body.Data, nil
}
