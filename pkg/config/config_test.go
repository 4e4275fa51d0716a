package config_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/config"
)

type commandConfig struct {
	config.Common
	SnapshotEvery int           `env:"ORDERSYS_SNAPSHOT_EVERY" default:"100"`
	MaxRetries    int64         `env:"ORDERSYS_COMMAND_MAX_RETRIES" default:"5"`
	DedupTTL      time.Duration `env:"ORDERSYS_DEDUP_TTL" default:"24h"`
	Verbose       bool          `env:"ORDERSYS_TEST_VERBOSE" default:"false"`
	Token         string        `env:"ORDERSYS_TEST_TOKEN" secret:"true"`
	PIN           int           `env:"ORDERSYS_TEST_PIN" secret:"true"`
	Ignored       string
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoadDefaults(t *testing.T) {
	cfg := commandConfig{Common: config.Defaults(config.CommandGRPCAddr, config.CommandMetricsAddr)}
	if err := config.LoadFrom(&cfg, env(nil)); err != nil {
		t.Fatal(err)
	}
	want := commandConfig{
		Common: config.Common{
			GRPCAddr:    "127.0.0.1:50051",
			MetricsAddr: ":9101",
			CQL: config.CQL{
				Hosts:             []string{"127.0.0.1:9042"},
				Keyspace:          "ordersys",
				Consistency:       "QUORUM",
				SerialConsistency: "SERIAL",
			},
			OTLPEndpoint:     "127.0.0.1:4317",
			TraceSampleRatio: 1.0,
			LogLevel:         "info",
			ShutdownTimeout:  15 * time.Second,
		},
		SnapshotEvery: 100,
		MaxRetries:    5,
		DedupTTL:      24 * time.Hour,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestLoadOverrides(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(c commandConfig) bool
	}{
		{"hosts list", map[string]string{"ORDERSYS_CQL_HOSTS": "a:9042, b:9042,,c:9042"},
			func(c commandConfig) bool {
				return reflect.DeepEqual(c.CQL.Hosts, []string{"a:9042", "b:9042", "c:9042"})
			}},
		{"grpc addr beats service default", map[string]string{"ORDERSYS_GRPC_ADDR": "0.0.0.0:6000"},
			func(c commandConfig) bool { return c.GRPCAddr == "0.0.0.0:6000" }},
		{"empty otlp endpoint disables export", map[string]string{"ORDERSYS_OTLP_ENDPOINT": ""},
			func(c commandConfig) bool { return c.OTLPEndpoint == "" }},
		{"empty int means default", map[string]string{"ORDERSYS_SNAPSHOT_EVERY": ""},
			func(c commandConfig) bool { return c.SnapshotEvery == 100 }},
		{"int", map[string]string{"ORDERSYS_SNAPSHOT_EVERY": " 7 "},
			func(c commandConfig) bool { return c.SnapshotEvery == 7 }},
		{"int64", map[string]string{"ORDERSYS_COMMAND_MAX_RETRIES": "12"},
			func(c commandConfig) bool { return c.MaxRetries == 12 }},
		{"float", map[string]string{"ORDERSYS_TRACE_SAMPLE_RATIO": "0.25"},
			func(c commandConfig) bool { return c.TraceSampleRatio == 0.25 }},
		{"duration", map[string]string{"ORDERSYS_SHUTDOWN_TIMEOUT": "2m30s"},
			func(c commandConfig) bool { return c.ShutdownTimeout == 150*time.Second }},
		{"bool", map[string]string{"ORDERSYS_TEST_VERBOSE": "true"},
			func(c commandConfig) bool { return c.Verbose }},
		{"secret", map[string]string{"ORDERSYS_CQL_PASSWORD": "hunter2"},
			func(c commandConfig) bool { return c.CQL.Password == "hunter2" }},
		{"nested keyspace", map[string]string{"ORDERSYS_CQL_KEYSPACE": "ks1", "ORDERSYS_CQL_LOCAL_DC": "dc1"},
			func(c commandConfig) bool {
				return c.CQL.Keyspace == "ks1" && c.CQL.LocalDC == "dc1" && c.CQL.SerialConsistency == "SERIAL"
			}},
		{"serial consistency", map[string]string{"ORDERSYS_CQL_SERIAL_CONSISTENCY": "LOCAL_SERIAL"},
			func(c commandConfig) bool { return c.CQL.SerialConsistency == "LOCAL_SERIAL" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := commandConfig{Common: config.Defaults(config.CommandGRPCAddr, config.CommandMetricsAddr)}
			if err := config.LoadFrom(&cfg, env(tt.env)); err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Fatalf("unexpected config %+v", cfg)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"int", map[string]string{"ORDERSYS_SNAPSHOT_EVERY": "x"},
			[]string{`ORDERSYS_SNAPSHOT_EVERY: "x" is not an integer`}},
		{"float", map[string]string{"ORDERSYS_TRACE_SAMPLE_RATIO": "half"},
			[]string{`ORDERSYS_TRACE_SAMPLE_RATIO: "half" is not a number`}},
		{"duration", map[string]string{"ORDERSYS_DEDUP_TTL": "10"},
			[]string{`ORDERSYS_DEDUP_TTL: "10" is not a duration`}},
		{"bool", map[string]string{"ORDERSYS_TEST_VERBOSE": "yes please"},
			[]string{`ORDERSYS_TEST_VERBOSE: "yes please" is not a boolean`}},
		{"all reported", map[string]string{"ORDERSYS_SNAPSHOT_EVERY": "x", "ORDERSYS_SHUTDOWN_TIMEOUT": "soon"},
			[]string{"ORDERSYS_SNAPSHOT_EVERY", `ORDERSYS_SHUTDOWN_TIMEOUT: "soon" is not a duration`}},
		{"secret value not echoed", map[string]string{"ORDERSYS_TEST_PIN": "s3cr3t"},
			[]string{"ORDERSYS_TEST_PIN: invalid int value (not shown: secret)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg commandConfig
			err := config.LoadFrom(&cfg, env(tt.env))
			if err == nil {
				t.Fatal("expected an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error leaks a secret: %q", err)
			}
		})
	}
}

func TestLoadRejectsNonPointer(t *testing.T) {
	for _, dst := range []any{nil, commandConfig{}, new(int), (*commandConfig)(nil)} {
		if err := config.Load(dst); err == nil {
			t.Errorf("Load(%T) succeeded", dst)
		}
	}
}

func TestLoadUnsupportedType(t *testing.T) {
	var cfg struct {
		X []int `env:"ORDERSYS_X"`
	}
	err := config.LoadFrom(&cfg, env(map[string]string{"ORDERSYS_X": "1,2"}))
	if err == nil || !strings.Contains(err.Error(), "ORDERSYS_X: unsupported field type") {
		t.Fatalf("got %v", err)
	}
}

func TestLoadFromProcessEnv(t *testing.T) {
	t.Setenv("ORDERSYS_CQL_HOSTS", "db1:9042,db2:9042")
	var c config.Common
	if err := config.Load(&c); err != nil {
		t.Fatal(err)
	}
	if len(c.CQL.Hosts) != 2 || c.CQL.Hosts[1] != "db2:9042" {
		t.Fatalf("hosts %v", c.CQL.Hosts)
	}
}

func TestStringMasksSecrets(t *testing.T) {
	cfg := commandConfig{Common: config.Defaults(config.CommandGRPCAddr, config.CommandMetricsAddr)}
	err := config.LoadFrom(&cfg, env(map[string]string{
		"ORDERSYS_CQL_PASSWORD": "hunter2", "ORDERSYS_TEST_PIN": "1234", "ORDERSYS_CQL_USERNAME": "app",
	}))
	if err != nil {
		t.Fatal(err)
	}
	s := config.String(&cfg)
	for _, want := range []string{
		"GRPCAddr=127.0.0.1:50051", "CQL.Hosts=127.0.0.1:9042", "CQL.Username=app", "CQL.Password=***",
		`CQL.LocalDC=""`, "ShutdownTimeout=15s", "TraceSampleRatio=1", "SnapshotEvery=100",
		"DedupTTL=24h0m0s", "PIN=***", `Token=""`, `Ignored=""`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %s\nmissing %s", s, want)
		}
	}
	if strings.Contains(s, "hunter2") || strings.Contains(s, "1234") {
		t.Errorf("String leaks a secret: %s", s)
	}
}

func TestLogValue(t *testing.T) {
	cfg := commandConfig{Common: config.Defaults(config.QueryGRPCAddr, config.QueryMetricsAddr)}
	if err := config.LoadFrom(&cfg, env(map[string]string{"ORDERSYS_CQL_PASSWORD": "hunter2"})); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("start", "config", config.LogValue(cfg))
	var got struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Config["GRPCAddr"] != "127.0.0.1:50052" || got.Config["SnapshotEvery"] != "100" {
		t.Errorf("unexpected log: %s", buf.String())
	}
	cql, _ := got.Config["CQL"].(map[string]any)
	if cql["Password"] != "***" || cql["Keyspace"] != "ordersys" {
		t.Errorf("unexpected CQL group: %s", buf.String())
	}
	if strings.Contains(buf.String(), "hunter2") {
		t.Errorf("log leaks a secret: %s", buf.String())
	}
}

func TestInfoRequested(t *testing.T) {
	type cfg struct {
		Addr   string `env:"ORDERSYS_X_ADDR" default:"127.0.0.1:1"`
		Secret string `env:"ORDERSYS_X_PASSWORD" secret:"true"`
	}
	var b strings.Builder
	if !config.InfoRequested([]string{"--help"}, &b, "x", "usage: x", &cfg{Secret: "hunter2"}) {
		t.Fatal("--help not answered")
	}
	if out := b.String(); !strings.Contains(out, "usage: x") || !strings.Contains(out, "ORDERSYS_X_ADDR") ||
		!strings.Contains(out, "127.0.0.1:1") || strings.Contains(out, "hunter2") {
		t.Fatalf("help:\n%s", out)
	}
	b.Reset()
	if !config.InfoRequested([]string{"version"}, &b, "x", "", &cfg{}) || !strings.HasPrefix(b.String(), "x ") {
		t.Fatalf("version: %q", b.String())
	}
	if config.InfoRequested([]string{"serve"}, &b, "x", "", &cfg{}) || config.InfoRequested(nil, &b, "x", "", &cfg{}) {
		t.Fatal("a command or no argument was taken for a question")
	}
}
