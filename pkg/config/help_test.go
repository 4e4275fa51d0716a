package config_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/ordersys/ordersys/pkg/config"
)

func TestVariables(t *testing.T) {
	cfg := commandConfig{Common: config.Defaults("127.0.0.1:50051", ":9101")}
	vars := config.Variables(&cfg)
	byName := map[string]config.Variable{}
	for _, v := range vars {
		byName[v.Name] = v
	}
	const pkg = "github.com/ordersys/ordersys/pkg/config"
	for _, want := range []config.Variable{
		{Name: "ORDERSYS_GRPC_ADDR", Default: "127.0.0.1:50051", Type: "string", Package: pkg, Struct: "Common", Field: "GRPCAddr"},
		{Name: "ORDERSYS_CQL_HOSTS", Default: "127.0.0.1:9042", Type: "[]string", Package: pkg, Struct: "CQL", Field: "Hosts"},
		{Name: "ORDERSYS_CQL_PASSWORD", Default: "", Secret: true, Type: "string", Package: pkg, Struct: "CQL", Field: "Password"},
		{Name: "ORDERSYS_CQL_TLS_ENABLED", Default: "false", Type: "bool", Package: pkg, Struct: "CQL", Field: "TLSEnabled"},
		{Name: "ORDERSYS_DEDUP_TTL", Default: "24h", Type: "time.Duration", Package: pkg + "_test", Struct: "commandConfig", Field: "DedupTTL"},
		{Name: "ORDERSYS_TEST_PIN", Default: "0", Secret: true, Type: "int", Package: pkg + "_test", Struct: "commandConfig", Field: "PIN"},
	} {
		if got := byName[want.Name]; !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", want.Name, got, want)
		}
	}
	if _, ok := byName["Ignored"]; ok || vars[0].Name != "ORDERSYS_GRPC_ADDR" {
		t.Errorf("want the tagged fields in field order, got %+v", vars)
	}
	if config.Variables(cfg) != nil {
		t.Error("a struct that is not a pointer gave variables")
	}
}

func TestInfoRequestedJSON(t *testing.T) {
	var b strings.Builder
	if !config.InfoRequested([]string{"--help=json"}, &b, "x", "usage: x", &commandConfig{}) {
		t.Fatal("--help=json not answered")
	}
	var h config.Help
	if err := json.Unmarshal([]byte(b.String()), &h); err != nil {
		t.Fatalf("--help=json wrote no JSON: %v\n%s", err, b.String())
	}
	if h.Binary != "x" || !reflect.DeepEqual(h.Variables, config.Variables(&commandConfig{})) {
		t.Errorf("--help=json = %+v", h)
	}
}
