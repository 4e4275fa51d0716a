package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// bornAtAFailure are the metrics the dashboard reads that have no series on a healthy system:
// counters with a label only known when the failure happens, so their first series is born with
// it (the alerts see that first one, see OrdersysDeadLettersGrowing). Every other metric of the
// dashboard must have a series once the system has handled one order.
var bornAtAFailure = map[string]string{
	"ordersys_relay_dead_lettered_total":    "by topic and reason: born at the relay's first dead letter",
	"ordersys_projector_dead_letters_total": "by projection, version and reason: born at the projector's first dead letter",
	"ordersys_projector_retries_total":      "by projection and version: born at the projector's first transient failure",
	"ordersys_relay_store_errors_total":     "by operation: born at the relay's first failed CQL operation",
	"ordersys_relay_publish_failures_total": "by kind: born at the relay's first failed publish",
}

// reDashboardMetric finds the metric names in a dashboard query: every metric the services
// export starts with ordersys_ (label names such as grpc_code never do).
var reDashboardMetric = regexp.MustCompile(`\bordersys_[a-z0-9_]+\b`)

// TestPrometheusScrapesEveryService starts the real Prometheus of `make run`
// (deploy/local/prometheus.sh) against the four running services: every target is up, every
// alert rule of deploy/prometheus/alerts.yaml (each one, by name) is loaded and evaluates
// without error, and, after one customer and one order went through the system, every metric
// the dashboard reads has a series (but those of bornAtAFailure) and every query evaluates.
func TestPrometheusScrapesEveryService(t *testing.T) {
	s := getSystem(t)
	addr := freeAddr()
	script := filepath.Join(s.root, "deploy", "local", "prometheus.sh")
	env := append(os.Environ(), "PROMETHEUS_ADDR="+addr, "PROMETHEUS_STATE_DIR="+t.TempDir(), "PROMETHEUS_SCRAPE_INTERVAL=1s")
	var targets []string
	for _, name := range serviceNames {
		targets = append(targets, s.metricsAddr[name])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	up := exec.CommandContext(ctx, script, append([]string{"up"}, targets...)...)
	up.Env = env
	if out, err := up.CombinedOutput(); err != nil {
		t.Fatalf("prometheus.sh up: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		down := exec.Command(script, "down")
		down.Env = env
		_ = down.Run()
	})

	get := func(path string, v any) error {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(v)
	}
	err := eventually(60*time.Second, time.Second, func() error {
		var r struct {
			Data struct {
				ActiveTargets []struct {
					ScrapeURL string `json:"scrapeUrl"`
					Health    string `json:"health"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		if err := get("/api/v1/targets", &r); err != nil {
			return err
		}
		upCount := 0
		for _, tg := range r.Data.ActiveTargets {
			if tg.Health == "up" {
				upCount++
			}
		}
		if upCount != len(targets) {
			return fmt.Errorf("%d of %d targets up: %+v", upCount, len(targets), r.Data.ActiveTargets)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rules := alertNames(t, filepath.Join(s.root, "deploy", "prometheus", "alerts.yaml"))
	err = eventually(30*time.Second, time.Second, func() error {
		var r struct {
			Data struct {
				Groups []struct {
					Rules []struct {
						Name   string `json:"name"`
						Health string `json:"health"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		if err := get("/api/v1/rules", &r); err != nil {
			return err
		}
		var loaded []string
		for _, g := range r.Data.Groups {
			for _, rule := range g.Rules {
				if rule.Health != "ok" {
					return fmt.Errorf("rule %s: health %q", rule.Name, rule.Health)
				}
				loaded = append(loaded, rule.Name)
			}
		}
		sort.Strings(loaded)
		if !slices.Equal(loaded, rules) {
			return fmt.Errorf("rules loaded: %v, want those of alerts.yaml: %v", loaded, rules)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// One customer and one order through the whole pipeline: the series born with the first
	// command, publication, projection and read-model wait appear.
	ctx, cancelTraffic := context.WithTimeout(context.Background(), time.Minute)
	defer cancelTraffic()
	customer, order := ids.New(), ids.New()
	if _, err := s.customers.RegisterCustomer(ctx, &ordersv1.RegisterCustomerRequest{CustomerId: customer,
		Email: "prom-" + customer[:8] + "@example.com", FirstName: "Prom", LastName: "Etheus"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.orders.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: order, CustomerId: customer, Items: items(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.query.GetOrder(ctx, &ordersv1.GetOrderRequest{OrderId: order, MinVersion: ptr(int64(1))}); err != nil {
		t.Fatal(err)
	}

	// Every query of the dashboard evaluates against the running system.
	raw, err := os.ReadFile(filepath.Join(s.root, "deploy", "grafana", "ordersys.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	queries := 0
	want := map[string]string{} // metric → the panel reading it
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			var r struct {
				Status string `json:"status"`
				Error  string `json:"error"`
			}
			if err := get("/api/v1/query?query="+url.QueryEscape(tg.Expr), &r); err != nil || r.Status != "success" {
				t.Errorf("panel %q: %s: %v %s %s", p.Title, tg.Expr, err, r.Status, r.Error)
			}
			queries++
			for _, m := range reDashboardMetric.FindAllString(tg.Expr, -1) {
				if _, excused := bornAtAFailure[m]; !excused {
					want[m] = p.Title
				}
			}
		}
	}
	if queries < 10 || len(want) < 10 {
		t.Fatalf("only %d dashboard queries reading %d metrics", queries, len(want))
	}
	// Every metric the dashboard reads has a series in Prometheus (an empty result would also
	// be a "success" above).
	err = eventually(30*time.Second, time.Second, func() error {
		var r struct {
			Data []string `json:"data"`
		}
		if err := get("/api/v1/label/__name__/values", &r); err != nil {
			return err
		}
		var missing []string
		for m, panel := range want {
			if !slices.Contains(r.Data, m) {
				missing = append(missing, fmt.Sprintf("%s (panel %q)", m, panel))
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			return fmt.Errorf("no series of %s", strings.Join(missing, ", "))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// alertNames returns the names of the alert rules of the rules file at path, sorted.
func alertNames(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\s*- (?:alert|record):\s*(\S+)\s*$`).FindAllStringSubmatch(string(raw), -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		t.Fatalf("no rules in %s", path)
	}
	sort.Strings(names)
	return names
}
