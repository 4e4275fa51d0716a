package e2e_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestReadyz: every service answers /readyz on its metrics port with its gRPC server's overall
// health (the chart's readiness probe when the gRPC port speaks TLS, which the kubelet's gRPC
// probe cannot), and /healthz with whether the process is alive.
func TestReadyz(t *testing.T) {
	s := getSystem(t)
	for _, name := range serviceNames {
		for path, want := range map[string]string{"/readyz": "ready", "/healthz": "ok"} {
			res, err := http.Get("http://" + s.metricsAddr[name] + path)
			if err != nil {
				t.Fatalf("%s %s: %v", name, path, err)
			}
			body, _ := io.ReadAll(res.Body)
			_ = res.Body.Close()
			if res.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != want {
				t.Errorf("%s %s: %s %q, want 200 %q", name, path, res.Status, body, want)
			}
		}
	}
}
