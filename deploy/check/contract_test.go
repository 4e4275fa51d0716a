package check

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"sigs.k8s.io/yaml"
)

// contract is testdata/service-env.yaml: which ORDERSYS_* variables each binary reads.
type contract struct {
	Common   []string                `json:"common"`
	Secret   []string                `json:"secret"`
	Services map[string]serviceEntry `json:"services"`
	Jobs     map[string]jobEntry     `json:"jobs"`
}

type serviceEntry struct {
	Package     string   `json:"package"`
	GRPCPort    int32    `json:"grpcPort"`
	MetricsPort int32    `json:"metricsPort"`
	Env         []string `json:"env"`
}

type jobEntry struct {
	Package string   `json:"package"`
	Env     []string `json:"env"`
}

// serviceEnv is the complete, sorted list of variables the service reads.
func (c contract) serviceEnv(name string) []string {
	return sortedUnique(append(slices.Clone(c.Common), c.Services[name].Env...))
}

// jobEnv is the complete, sorted list of variables the job reads.
func (c contract) jobEnv(name string) []string {
	return sortedUnique(slices.Clone(c.Jobs[name].Env))
}

// serviceNames are the long-running services, sorted.
func (c contract) serviceNames() []string {
	names := make([]string, 0, len(c.Services))
	for n := range c.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// binaries maps every binary (services and jobs) to its package folder.
func (c contract) binaries() map[string]string {
	out := map[string]string{}
	for n, s := range c.Services {
		out[n] = s.Package
	}
	for n, j := range c.Jobs {
		out[n] = j.Package
	}
	return out
}

func sortedUnique(s []string) []string {
	sort.Strings(s)
	return slices.Compact(s)
}

// repoRoot is the repository root (two levels above this module).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Fatalf("repository root not found above deploy/check (no go.work in %s): %v", root, err)
	}
	return root
}

func loadContract(t *testing.T) contract {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "service-env.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c contract
	if err := yaml.UnmarshalStrict(raw, &c); err != nil {
		t.Fatalf("testdata/service-env.yaml: %v", err)
	}
	if len(c.Common) == 0 || len(c.Services) != 4 || len(c.Jobs) == 0 {
		t.Fatalf("testdata/service-env.yaml: want common vars, 4 services and the migrate job, got %+v", c)
	}
	return c
}

func TestContractIsConsistent(t *testing.T) {
	c := loadContract(t)
	ports := map[int32]string{}
	for _, name := range c.serviceNames() {
		s := c.Services[name]
		for _, p := range []int32{s.GRPCPort, s.MetricsPort} {
			if other, dup := ports[p]; dup || p == 0 {
				t.Errorf("service %s: port %d missing or also used by %s", name, p, other)
			}
			ports[p] = name
		}
		if len(c.serviceEnv(name)) != len(c.Common)+len(s.Env) {
			t.Errorf("service %s: env repeats a common variable", name)
		}
	}
	for _, v := range c.Secret {
		if !slices.Contains(c.Common, v) {
			t.Errorf("secret %s is not a common variable", v)
		}
	}
}
