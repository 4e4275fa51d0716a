package check

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"sigs.k8s.io/yaml"
)

// contract is testdata/service-env.yaml, what the deployments must set for each binary (its
// gRPC and metrics ports, and the ORDERSYS_* variables the chart and compose set), joined with
// what each binary reads: docs/configuration.md, generated from the binaries' config structs
// (reference_test.go).
type contract struct {
	Common   []string                `json:"common"`
	Services map[string]serviceEntry `json:"services"`
	Jobs     map[string]jobEntry     `json:"jobs"`

	ref reference // docs/configuration.md
	// Secret are the variables the config structs declare secret:"true": a deployment takes
	// them from a Secret, never a ConfigMap or a plain value.
	Secret []string `json:"-"`
}

type serviceEntry struct {
	GRPCPort    int32    `json:"grpcPort"`
	MetricsPort int32    `json:"metricsPort"`
	Env         []string `json:"env"` // must be set by the chart and compose, with common
}

type jobEntry struct {
	Env []string `json:"env"` // must be set by the chart and compose (common is not added)
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

// required is the sorted list of variables the chart and compose must set for binary.
func (c contract) required(binary string) []string {
	if _, ok := c.Services[binary]; ok {
		return c.serviceEnv(binary)
	}
	return c.jobEnv(binary)
}

// optional is the sorted list of variables binary reads that a deployment may leave unset
// (to their defaults): those it reads but need not be set.
func (c contract) optional(binary string) []string {
	req := c.required(binary)
	return slices.DeleteFunc(slices.Clone(c.reads(binary)), func(v string) bool { return slices.Contains(req, v) })
}

// reads is the sorted list of every variable binary reads (docs/configuration.md).
func (c contract) reads(binary string) []string {
	return c.ref.reads[binary]
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
			t.Errorf("ORDERSYS_* environment sets %s, which this binary does not read (docs/configuration.md)", v)
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

// binaries maps every binary (services and jobs) to its main package folder
// (docs/configuration.md).
func (c contract) binaries() map[string]string {
	return c.ref.packages
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

// loadContract reads service-env.yaml and docs/configuration.md; it fails t unless the yaml
// deploys exactly the binaries the reference lists.
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
	c.ref = loadReference(t)
	c.Secret = c.ref.secret
	var deployed []string
	for n := range c.Services {
		deployed = append(deployed, n)
	}
	for n := range c.Jobs {
		deployed = append(deployed, n)
	}
	if got, want := sortedUnique(deployed), sortedUnique(slices.Clone(c.ref.order)); !slices.Equal(got, want) {
		t.Fatalf("testdata/service-env.yaml deploys %v, %s lists the binaries %v: deploy each binary, or drop it from pkg/config/cmd/envdoc",
			got, referencePath, want)
	}
	return c
}

// TestContractIsConsistent: ports are set and distinct, no variable is listed twice for a
// binary, and a deployment must set only variables its binary reads (docs/configuration.md).
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
			t.Errorf("service %s: env repeats a common variable, or a variable twice", name)
		}
	}
	for name, j := range c.Jobs {
		if len(c.jobEnv(name)) != len(j.Env) {
			t.Errorf("job %s: env lists a variable twice", name)
		}
	}
	for bin := range c.binaries() {
		for _, v := range c.required(bin) {
			if !slices.Contains(c.reads(bin), v) {
				t.Errorf("service-env.yaml has the deployments set %s for %s, which does not read it (%s)", v, bin, referencePath)
			}
		}
	}
}
