package buildinfo_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ordersys/ordersys/pkg/buildinfo"
)

func TestRegisterExportsBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	buildinfo.Register(reg, "command")
	want := `# HELP ordersys_build_info Always 1; the labels say which build of the service is running.
# TYPE ordersys_build_info gauge
ordersys_build_info{goversion="` + goVersion(t) + `",revision="` + buildinfo.Revision() + `",service="command",version="` + buildinfo.Version() + `"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ordersys_build_info"); err != nil {
		t.Fatal(err)
	}
	if s := buildinfo.String("command"); !strings.HasPrefix(s, "command "+buildinfo.Version()+" (revision ") {
		t.Fatalf("String = %q", s)
	}
}

func goVersion(t *testing.T) string {
	t.Helper()
	s := buildinfo.String("x")
	i := strings.LastIndex(s, ", ")
	return strings.TrimSuffix(s[i+2:], ")")
}
