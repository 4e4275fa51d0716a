package check

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// referencePath is the generated configuration reference, relative to the repository root.
const referencePath = "docs/configuration.md"

// reference is what docs/configuration.md says each binary reads. The page is generated from
// the binaries themselves (`make env-doc`: each one's --help=json, which lists the env tags of
// its config struct) and `make env-doc-check` fails while it is stale, so reading it here checks
// the deployments against the config structs without importing a service.
type reference struct {
	order      []string            // the binaries, in the page's order
	packages   map[string]string   // binary → folder of its main package
	reads      map[string][]string // binary → the variables it reads, sorted
	secret     []string            // variables declared secret:"true", sorted
	perBinary  []string            // variables whose default differs from binary to binary
	tableNames []string            // every variable, in the page's order
}

// loadReference parses the page's two tables: Binaries (binary, main package, …) and Variables
// (variable with " (secret)", type, default, read by, …), each cell of the first columns a
// plain value or a back-quoted one.
func loadReference(t *testing.T) reference {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), referencePath))
	if err != nil {
		t.Fatalf("%v (generate it with make env-doc)", err)
	}
	ref := reference{packages: map[string]string{}, reads: map[string][]string{}}
	section := ""
	for line := range strings.Lines(string(raw)) {
		line = strings.TrimSpace(line)
		if h, ok := strings.CutPrefix(line, "## "); ok {
			section = h
			continue
		}
		row, ok := strings.CutPrefix(line, "| `")
		if !ok {
			continue
		}
		cells := strings.SplitN("`"+row, " | ", 6)
		switch {
		case section == "Binaries" && len(cells) >= 2:
			bin := strings.Trim(cells[0], "`")
			ref.order = append(ref.order, bin)
			ref.packages[bin] = strings.Trim(cells[1], "`")
		case section == "Variables" && len(cells) == 6:
			label, secret := strings.CutSuffix(cells[0], " (secret)")
			name := strings.Trim(label, "`")
			ref.tableNames = append(ref.tableNames, name)
			if secret {
				ref.secret = append(ref.secret, name)
			}
			if strings.Count(cells[2], "`") > 2 {
				ref.perBinary = append(ref.perBinary, name)
			}
			for _, bin := range strings.Split(cells[3], ", ") {
				ref.reads[bin] = append(ref.reads[bin], name)
			}
		default:
			t.Fatalf("%s: unexpected row in section %q (regenerate it with make env-doc; if the generator changed, update loadReference):\n%s",
				referencePath, section, line)
		}
	}
	if len(ref.order) == 0 || len(ref.tableNames) == 0 {
		t.Fatalf("%s lacks its Binaries or Variables table: regenerate it with make env-doc", referencePath)
	}
	for bin, vars := range ref.reads {
		if _, ok := ref.packages[bin]; !ok {
			t.Fatalf("%s: variables read by %q, which is not in its Binaries table", referencePath, bin)
		}
		ref.reads[bin] = sortedUnique(vars)
	}
	ref.secret = sortedUnique(ref.secret)
	return ref
}

// TestReference checks the variables the binaries read (docs/configuration.md, generated from
// the config structs) against the rules of a configuration: the ORDERSYS_ namespace, one
// variable per table row, and one default per variable across the binaries but for each
// service's own addresses (perServiceVars), e.g. the topic names the command service writes,
// the relay publishes to and the projector reads.
func TestReference(t *testing.T) {
	ref := loadReference(t)
	for i, name := range ref.tableNames {
		if !strings.HasPrefix(name, "ORDERSYS_") {
			t.Errorf("%s: variable outside the ORDERSYS_ namespace", name)
		}
		if slices.Contains(ref.tableNames[:i], name) {
			t.Errorf("%s has two rows in %s", name, referencePath)
		}
	}
	for _, name := range ref.perBinary {
		if !slices.Contains(perServiceVars, name) {
			t.Errorf("%s has different defaults in different binaries (%s): one fact, one default", name, referencePath)
		}
	}
	for bin, vars := range ref.reads {
		if len(vars) == 0 {
			t.Errorf("%s reads no variable", bin)
		}
	}
}
