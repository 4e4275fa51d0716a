package bootstrap_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/ordersys/ordersys/pkg/bootstrap"
	"github.com/ordersys/ordersys/pkg/config"
)

// TestCheckSchema: a probe that fails names the keyspace and says what to do; it runs with a
// deadline.
func TestCheckSchema(t *testing.T) {
	cause := errors.New("unconfigured table event_store")
	err := bootstrap.CheckSchema(context.Background(), "ks1", "event store", func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			return errors.New("no deadline")
		}
		return cause
	})
	if !errors.Is(err, cause) || !strings.Contains(err.Error(), "event store does not answer (is keyspace ks1 migrated? run migrate)") {
		t.Fatalf("CheckSchema: %v", err)
	}
	if err := bootstrap.CheckSchema(context.Background(), "ks1", "event store", func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

// TestServeMetrics: the registry carries the build information and /readyz follows Ready.
func TestServeMetrics(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, err := bootstrap.ServeMetrics(ctx, "svc", "", ln, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	if body := get(t, base+"/metrics", http.StatusOK); !strings.Contains(body, `ordersys_build_info{`) || !strings.Contains(body, `service="svc"`) {
		t.Fatalf("/metrics lacks the build information:\n%s", body)
	}
	get(t, base+"/readyz", http.StatusServiceUnavailable)
	m.Ready.Set(func(context.Context) error { return nil })
	get(t, base+"/readyz", http.StatusOK)
}

func get(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d %s, want %d", url, resp.StatusCode, body, want)
	}
	return string(body)
}

// testConfig is a service configuration whose check fails when Limit is negative.
type testConfig struct {
	config.Common
	Limit int `env:"ORDERSYS_BOOTSTRAP_TEST_LIMIT" default:"3"`
}

func (c testConfig) Validate() error {
	if c.Limit < 0 {
		return errors.New("ORDERSYS_BOOTSTRAP_TEST_LIMIT must not be negative")
	}
	return nil
}

// TestLoadConfig: the defaults are filled in, and a failed check is a configuration error.
func TestLoadConfig(t *testing.T) {
	cfg, err := bootstrap.LoadConfig(testConfig{Common: config.Defaults("127.0.0.1:1", ":2")})
	if err != nil || cfg.Limit != 3 || cfg.GRPCAddr != "127.0.0.1:1" || cfg.Shared().MetricsAddr != ":2" {
		t.Fatalf("LoadConfig: %+v %v", cfg, err)
	}
	t.Setenv("ORDERSYS_BOOTSTRAP_TEST_LIMIT", "-1")
	if _, err := bootstrap.LoadConfig(testConfig{}); err == nil || !strings.HasPrefix(err.Error(), "configuration: ") {
		t.Fatalf("LoadConfig of a bad value: %v", err)
	}
}
