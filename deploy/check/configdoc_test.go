package check

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated configuration table in docs/DESIGN.md")

// The configuration table of docs/DESIGN.md sits between these lines and is generated from
// testdata/service-env.yaml and the config structs' tags (TestDesignConfigTable).
const (
	tableBegin = "<!-- BEGIN generated configuration table: `cd deploy/check && go test -run TestDesignConfigTable -update` rewrites it from testdata/service-env.yaml and the env tags of the config structs; do not edit by hand -->"
	tableEnd   = "<!-- END generated configuration table -->"
)

// binaryOrder is the order of the binaries in the table's columns.
var binaryOrder = []string{"command", "query", "cdc-relay", "projector", "migrate"}

// configTable renders the table: one row per variable (the common ones first, in the yaml's order,
// then the others by name) with its default, the binaries whose deployment must set it, those that
// read it but may leave it unset, and the struct that declares it.
func configTable(t *testing.T, c contract) string {
	t.Helper()
	vars := varsByBinary(t, c)
	if len(vars) != len(binaryOrder) {
		t.Fatalf("binaries %v, want %v", keys(vars), binaryOrder)
	}
	st := newSourceTree(t)
	cfgConsts, cqlConsts := st.pkg("pkg/config").consts, st.pkg("pkg/cql").consts
	constant := func(consts map[string]string, name string) string {
		v, ok := consts[name]
		if !ok {
			t.Fatalf("constant %s not found: the configuration table's note needs updating", name)
		}
		return "`" + v + "`"
	}
	// Defaults not in a default:"..." tag.
	notes := map[string]string{
		"ORDERSYS_GRPC_ADDR": fmt.Sprintf("per service: %s command, %s query, %s cdc-relay, %s projector",
			constant(cfgConsts, "CommandGRPCAddr"), constant(cfgConsts, "QueryGRPCAddr"),
			constant(cfgConsts, "RelayGRPCAddr"), constant(cfgConsts, "ProjectorGRPCAddr")),
		"ORDERSYS_METRICS_ADDR": fmt.Sprintf("per service: %s command, %s query, %s cdc-relay, %s projector",
			constant(cfgConsts, "CommandMetricsAddr"), constant(cfgConsts, "QueryMetricsAddr"),
			constant(cfgConsts, "RelayMetricsAddr"), constant(cfgConsts, "ProjectorMetricsAddr")),
		"ORDERSYS_CQL_REPLICATION": "empty: " + constant(cqlConsts, "DefaultReplication"),
	}

	var names []string
	names = append(names, c.Common...)
	var rest []string
	for _, bin := range binaryOrder {
		for name := range vars[bin] {
			if !slices.Contains(names, name) && !slices.Contains(rest, name) {
				rest = append(rest, name)
			}
		}
	}
	slices.Sort(rest)
	names = append(names, rest...)

	var b strings.Builder
	b.WriteString("| variable | default | set by the chart and compose for | optional (default when unset) for | declared in |\n")
	b.WriteString("| --- | --- | --- | --- | --- |\n")
	for _, name := range names {
		var def, declared []string
		var required, optional []string
		secret := false
		for _, bin := range binaryOrder {
			v, ok := vars[bin][name]
			if !ok {
				continue
			}
			if !slices.Contains(def, v.Default) {
				def = append(def, v.Default)
			}
			if !slices.Contains(declared, v.Declared) {
				declared = append(declared, v.Declared)
			}
			secret = secret || v.Secret
			if slices.Contains(c.optional(bin), name) {
				optional = append(optional, bin)
			} else {
				required = append(required, bin)
			}
		}
		if len(def) != 1 {
			t.Errorf("%s has different defaults in different binaries (%q): one fact, one default", name, def)
		}
		d := "empty"
		switch {
		case notes[name] != "":
			if def[0] != "" {
				t.Errorf("%s: the table's note replaces a tag default %q; drop the note", name, def[0])
			}
			d = notes[name]
		case def[0] != "":
			d = "`" + def[0] + "`"
		}
		label := "`" + name + "`"
		if secret {
			label += " (secret)"
		}
		for i := range declared {
			declared[i] = "`" + declared[i] + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", label, d, binaries(c, required), binaries(c, optional), strings.Join(declared, ", "))
	}
	for name := range notes {
		if !slices.Contains(names, name) {
			t.Errorf("note for %s, which no binary reads", name)
		}
	}
	return b.String()
}

// binaries renders a list of binaries, "every service" standing for the four services.
func binaries(c contract, bins []string) string {
	if len(bins) == 0 {
		return ""
	}
	var out []string
	if services := c.serviceNames(); len(bins) >= len(services) && !slices.ContainsFunc(services, func(s string) bool { return !slices.Contains(bins, s) }) {
		out = append(out, "every service")
		bins = slices.DeleteFunc(slices.Clone(bins), func(b string) bool { return slices.Contains(services, b) })
	}
	return strings.Join(append(out, bins...), ", ")
}

// TestDesignConfigTable keeps the configuration table of docs/DESIGN.md generated: it fails when
// the table differs from what service-env.yaml and the struct tags give; -update rewrites it.
func TestDesignConfigTable(t *testing.T) {
	c := loadContract(t)
	table := configTable(t, c)
	path := filepath.Join(repoRoot(t), "docs", "DESIGN.md")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	i, j := strings.Index(doc, tableBegin), strings.Index(doc, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("docs/DESIGN.md lacks the lines\n%s\n%s\naround the configuration table", tableBegin, tableEnd)
	}
	want := doc[:i] + tableBegin + "\n" + table + doc[j:]
	if want == doc {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the configuration table in %s", path)
		return
	}
	t.Errorf("the configuration table in docs/DESIGN.md is stale; regenerate it with\n  cd deploy/check && go test -run TestDesignConfigTable -update\nwant:\n%s", table)
}
