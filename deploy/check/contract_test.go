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
	Env         []string `json:"env"`      // must be set by the chart and compose
	Optional    []string `json:"optional"` // read, with a default; may be left unset
}

type jobEntry struct {
	Package  string   `json:"package"`
	Env      []string `json:"env"`
	Optional []string `json:"optional"`
}

// serviceEnv is the sorted list of variables the chart and compose must set for the service
// (common and env).
func (c contract) serviceEnv(name string) []string {
	return sortedUnique(append(slices.Clone(c.Common), c.Services[name].Env...))
}

// jobEnv is the sorted list of variables the chart and compose must set for the job.
func (c contract) jobEnv(name string) []string {
	return sortedUnique(slices.Clone(c.Jobs[name].Env))
}

// optional is the sorted list of variables binary (service or job) reads that may be left unset.
func (c contract) optional(binary string) []string {
	if s, ok := c.Services[binary]; ok {
		return sortedUnique(slices.Clone(s.Optional))
	}
	return sortedUnique(slices.Clone(c.Jobs[binary].Optional))
}

// reads is the sorted list of every variable binary reads (set or optional).
func (c contract) reads(binary string) []string {
	if _, ok := c.Services[binary]; ok {
		return sortedUnique(append(c.serviceEnv(binary), c.optional(binary)...))
	}
	return sortedUnique(append(c.jobEnv(binary), c.optional(binary)...))
}

// checkEnvNames fails t unless got (the ORDERSYS_* names a deployment sets for a binary) holds
// every required variable and nothing the binary does not read.
func checkEnvNames(t *testing.T, got, required, optional []string) {
	t.Helper()
	for _, v := range required {
		if !slices.Contains(got, v) {
			t.Errorf("ORDERSYS_* environment lacks %s (required by service-env.yaml)\ngot %v", v, got)
		}
	}
	for _, v := range got {
		if !slices.Contains(required, v) && !slices.Contains(optional, v) {
			t.Errorf("ORDERSYS_* environment sets %s, which this binary does not read (service-env.yaml)", v)
		}
	}
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

// perServiceVars are the variables whose value differs by service (its own addresses).
var perServiceVars = []string{"ORDERSYS_GRPC_ADDR", "ORDERSYS_METRICS_ADDR"}

// checkOneValuePerVariable fails t when a variable has different values for two services
// (envs: service → variable → value), per-service addresses aside: one fact, one name, one value,
// e.g. the topic names the command service writes, the relay publishes to and the projector reads.
func checkOneValuePerVariable(t *testing.T, envs map[string]map[string]string) {
	t.Helper()
	value, owner := map[string]string{}, map[string]string{}
	names := make([]string, 0, len(envs))
	for n := range envs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, svc := range names {
		for k, v := range envs[svc] {
			if slices.Contains(perServiceVars, k) {
				continue
			}
			if prev, ok := value[k]; ok && prev != v {
				t.Errorf("%s is %q for %s but %q for %s: one value across services", k, prev, owner[k], v, svc)
				continue
			}
			value[k], owner[k] = v, svc
		}
	}
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
		if len(c.reads(name)) != len(c.Common)+len(s.Env)+len(s.Optional) {
			t.Errorf("service %s: a variable is listed twice across common, env and optional", name)
		}
	}
	for name, j := range c.Jobs {
		if len(c.reads(name)) != len(j.Env)+len(j.Optional) {
			t.Errorf("job %s: a variable is listed twice across env and optional", name)
		}
	}
	for _, v := range c.Secret {
		read := false
		for b := range c.binaries() {
			read = read || slices.Contains(c.reads(b), v)
		}
		if !read {
			t.Errorf("secret %s is read by no binary", v)
		}
	}
}
