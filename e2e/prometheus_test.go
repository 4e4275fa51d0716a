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
	"testing"
	"time"
)

// TestPrometheusScrapesEveryService starts the real Prometheus of `make run`
// (deploy/local/prometheus.sh) against the four running services: every target is up and every
// alert rule of deploy/prometheus/alerts.yaml is loaded and evaluates without error.
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
		n := 0
		for _, g := range r.Data.Groups {
			for _, rule := range g.Rules {
				if rule.Health != "ok" {
					return fmt.Errorf("rule %s: health %q", rule.Name, rule.Health)
				}
				n++
			}
		}
		if n < 8 {
			return fmt.Errorf("%d rules loaded, want the 8 of alerts.yaml", n)
		}
		return nil
	})
	if err != nil {
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
		}
	}
	if queries < 10 {
		t.Fatalf("only %d dashboard queries", queries)
	}
}
