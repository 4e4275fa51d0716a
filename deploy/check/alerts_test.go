package check

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestAlertRules runs the real promtool (Debian's prometheus package; `make test` installs it)
// over deploy/prometheus: the rules load, and each alert fires on the series that mean trouble
// and stays silent otherwise (alerts_test.yaml).
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install Debian's prometheus package (make prometheus-tools)")
	}
	dir := filepath.Join(repoRoot(t), "deploy", "prometheus")
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestEveryAlertIsShownFiringAndSilent reads deploy/prometheus: every alert rule has at least
// one case in alerts_test.yaml where it fires and one where it stays silent (promtool runs them
// in TestAlertRules), and every runbook an alert names is a heading of docs/operations.md.
func TestEveryAlertIsShownFiringAndSilent(t *testing.T) {
	root := repoRoot(t)
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `json:"alert"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	for file, v := range map[string]any{"alerts.yaml": &rules, "alerts_test.yaml": &tests} {
		raw, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", file))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(raw, v); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	firing, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, c := range tc.AlertRuleTest {
			if len(c.ExpAlerts) > 0 {
				firing[c.Alertname] = true
			} else {
				silent[c.Alertname] = true
			}
		}
	}
	ops, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+ (.+)$`).FindAllStringSubmatch(string(ops), -1) {
		anchors[headingAnchor(m[1])] = true
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if !firing[r.Alert] {
				t.Errorf("alerts_test.yaml has no case where %s fires", r.Alert)
			}
			if !silent[r.Alert] {
				t.Errorf("alerts_test.yaml has no case where %s stays silent", r.Alert)
			}
			if rb, ok := r.Annotations["runbook"]; ok {
				file, anchor, _ := strings.Cut(rb, "#")
				if file != "docs/operations.md" || !anchors[anchor] {
					t.Errorf("%s: runbook %s is no heading of docs/operations.md", r.Alert, rb)
				}
			}
		}
	}
	if n < 9 {
		t.Fatalf("only %d alerts in alerts.yaml", n)
	}
}

// headingAnchor is the anchor GitHub gives a Markdown heading: lower case, spaces to hyphens,
// punctuation but hyphens and underscores dropped.
func headingAnchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

var (
	reMetricName = regexp.MustCompile(`\b((?:ordersys|projector|grpc_server)_[a-z_]+)\b`)
	reGoString   = regexp.MustCompile(`"([a-z][a-z0-9_]*)"`)
)

// TestAlertRulesUseExportedMetrics checks that every metric an alert rule reads is one the
// services define (see definedMetrics). A renamed metric would otherwise leave an alert that
// never fires.
func TestAlertRulesUseExportedMetrics(t *testing.T) {
	rules, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	checkMetrics(t, "alert rules", string(rules), 7)
}

// checkMetrics fails the test for each metric name in text that no service defines, and when
// text names fewer than atLeast metrics (a sign the check checks nothing).
func checkMetrics(t *testing.T, what, text string, atLeast int) {
	t.Helper()
	defined := definedMetrics(t)
	seen := 0
	for _, m := range reMetricName.FindAllString(text, -1) {
		seen++
		if !defined(strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_count"), "_sum")) {
			t.Errorf("%s read %s, which no service defines", what, m)
		}
	}
	if seen < atLeast {
		t.Fatalf("only %d metric references found in the %s", seen, what)
	}
}

// definedMetrics returns whether a metric name is defined by the services: the name, or a
// namespace and a name joined by "_" (prometheus.Opts), appears as a string in their Go source.
func definedMetrics(t *testing.T) func(string) bool {
	t.Helper()
	root := repoRoot(t)
	known := map[string]bool{}
	for _, dir := range []string{"pkg", "services"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.Contains(path, "/gen/") {
				return err
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range reGoString.FindAllStringSubmatch(string(src), -1) {
				known[m[1]] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return func(name string) bool {
		if known[name] {
			return true
		}
		for i := strings.IndexByte(name, '_'); i > 0; i = next(name, i) {
			if known[name[:i]] && known[name[i+1:]] {
				return true
			}
		}
		return false
	}
}

// next returns the index of the next "_" after i in s, or -1.
func next(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '_')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}
