package check

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose parses deploy/compose.yaml with the compose specification's reference loader
// (interpolation, merge keys, validation against the compose schema), as `docker compose` would.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "deploy")
	file := filepath.Join(dir, "compose.yaml")
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: file}},
		// Only the file's own defaults: the developer's shell must not change what is checked.
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("ordersys", true) })
	if err != nil {
		t.Fatalf("compose.yaml does not load: %v", err)
	}
	return p
}

func envValue(s types.ServiceConfig, name string) string {
	if v := s.Environment[name]; v != nil {
		return *v
	}
	return ""
}

func ordersysEnvKeys(env types.MappingWithEquals) []string {
	var keys []string
	for k := range env {
		if strings.HasPrefix(k, "ORDERSYS_") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func TestComposeServices(t *testing.T) {
	c := loadContract(t)
	p := loadCompose(t)

	want := append([]string{"scylla", "redpanda", "jaeger"}, c.serviceNames()...)
	for name := range c.Jobs {
		want = append(want, name)
	}
	sort.Strings(want)
	got := p.ServiceNames()
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Fatalf("compose services = %v, want %v", got, want)
	}

	// Every address a service is given must name a compose service and one of its ports.
	checkAddr := func(t *testing.T, what, addr string) {
		t.Helper()
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Errorf("%s = %q: not host:port: %v", what, addr, err)
			return
		}
		if _, err := p.GetService(host); err != nil {
			t.Errorf("%s = %q: host %q is not a compose service", what, addr, host)
		}
		if _, err := strconv.Atoi(port); err != nil {
			t.Errorf("%s = %q: bad port", what, addr)
		}
	}

	for _, name := range c.serviceNames() {
		t.Run(name, func(t *testing.T) {
			s, _ := p.GetService(name)
			entry := c.Services[name]
			checkOrdersysContainer(t, s, name)
			checkEnvNames(t, ordersysEnvKeys(s.Environment), c.serviceEnv(name), c.optional(name))
			if got, want := envValue(s, "ORDERSYS_GRPC_ADDR"), fmt.Sprintf("0.0.0.0:%d", entry.GRPCPort); got != want {
				t.Errorf("ORDERSYS_GRPC_ADDR = %q, want %q", got, want)
			}
			if got, want := envValue(s, "ORDERSYS_METRICS_ADDR"), fmt.Sprintf("0.0.0.0:%d", entry.MetricsPort); got != want {
				t.Errorf("ORDERSYS_METRICS_ADDR = %q, want %q", got, want)
			}
			for _, h := range strings.Split(envValue(s, "ORDERSYS_CQL_HOSTS"), ",") {
				checkAddr(t, "ORDERSYS_CQL_HOSTS", h)
			}
			checkAddr(t, "ORDERSYS_OTLP_ENDPOINT", envValue(s, "ORDERSYS_OTLP_ENDPOINT"))
			if _, ok := s.Environment["ORDERSYS_KAFKA_BROKERS"]; ok {
				for _, b := range strings.Split(envValue(s, "ORDERSYS_KAFKA_BROKERS"), ",") {
					checkAddr(t, "ORDERSYS_KAFKA_BROKERS", b)
				}
				wantDep(t, s, "redpanda", types.ServiceConditionHealthy)
			}
			wantDep(t, s, "migrate", types.ServiceConditionCompletedSuccessfully)
			wantDep(t, s, "scylla", types.ServiceConditionHealthy)

			// gRPC and metrics published on the same host port, on loopback only.
			for _, port := range []int32{entry.GRPCPort, entry.MetricsPort} {
				if !publishes(s, port) {
					t.Errorf("port %d not published as 127.0.0.1:%d:%d", port, port, port)
				}
			}
			// Health: the image's grpc_health_probe against the service's own gRPC port.
			if s.HealthCheck == nil || len(s.HealthCheck.Test) < 3 ||
				s.HealthCheck.Test[1] != "/usr/local/bin/grpc_health_probe" ||
				s.HealthCheck.Test[2] != fmt.Sprintf("-addr=127.0.0.1:%d", entry.GRPCPort) {
				t.Errorf("healthcheck = %+v, want grpc_health_probe -addr=127.0.0.1:%d", s.HealthCheck, entry.GRPCPort)
			}
		})
	}

	for name := range c.Jobs {
		t.Run(name, func(t *testing.T) {
			s, _ := p.GetService(name)
			checkOrdersysContainer(t, s, name)
			checkEnvNames(t, ordersysEnvKeys(s.Environment), c.jobEnv(name), c.optional(name))
			if s.Restart != "no" {
				t.Errorf("restart = %q, want \"no\" for a one-shot job", s.Restart)
			}
			wantDep(t, s, "scylla", types.ServiceConditionHealthy)
		})
	}

	t.Run("one-value-per-variable", func(t *testing.T) {
		envs := map[string]map[string]string{}
		for _, name := range c.serviceNames() {
			s, _ := p.GetService(name)
			envs[name] = map[string]string{}
			for _, k := range ordersysEnvKeys(s.Environment) {
				envs[name][k] = envValue(s, k)
			}
		}
		checkOneValuePerVariable(t, envs)
	})

	t.Run("scylla-cdc", func(t *testing.T) {
		relay, _ := p.GetService("cdc-relay")
		migrate, _ := p.GetService("migrate")
		if got := envValue(relay, "ORDERSYS_RELAY_SOURCE"); got != "scylla-cdc" {
			t.Errorf("cdc-relay ORDERSYS_RELAY_SOURCE = %q, want scylla-cdc on ScyllaDB", got)
		}
		if got := envValue(migrate, "ORDERSYS_CQL_PROFILE"); got != "scylla" {
			t.Errorf("migrate ORDERSYS_CQL_PROFILE = %q, want scylla (tablets off, CDC on)", got)
		}
		scylla, _ := p.GetService("scylla")
		if !slices.Contains(scylla.Command, "--developer-mode=1") {
			t.Errorf("scylla command %v: want --developer-mode=1", scylla.Command)
		}
	})

	t.Run("dependencies", func(t *testing.T) {
		hostPorts := map[string]string{}
		for _, s := range p.Services {
			for dep, d := range s.DependsOn {
				target, err := p.GetService(dep)
				if err != nil {
					t.Errorf("%s depends on unknown service %s", s.Name, dep)
					continue
				}
				if d.Condition == types.ServiceConditionHealthy && target.HealthCheck == nil {
					t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", s.Name, dep, dep)
				}
			}
			for _, port := range s.Ports {
				key := port.HostIP + ":" + port.Published
				if other, dup := hostPorts[key]; dup {
					t.Errorf("host port %s published by %s and %s", key, other, s.Name)
				}
				hostPorts[key] = s.Name
			}
		}
	})
}

// checkOrdersysContainer: the ordersys image built from the repository root, the binary as entry
// point, and the hardening (non-root, read-only root filesystem, no privileges).
func checkOrdersysContainer(t *testing.T, s types.ServiceConfig, binary string) {
	t.Helper()
	root := repoRoot(t)
	if s.Build == nil || filepath.Clean(s.Build.Context) != root || s.Build.Dockerfile != "Dockerfile" {
		t.Errorf("build = %+v, want context %s (repository root) and its Dockerfile", s.Build, root)
	}
	if want := []string{"/usr/local/bin/" + binary}; !slices.Equal([]string(s.Entrypoint), want) {
		t.Errorf("entrypoint = %v, want %v", s.Entrypoint, want)
	}
	if s.User != "65532:65532" {
		t.Errorf("user = %q, want 65532:65532 (non-root)", s.User)
	}
	if !s.ReadOnly {
		t.Error("read_only is not set")
	}
	if !slices.Equal(s.CapDrop, []string{"ALL"}) {
		t.Errorf("cap_drop = %v, want [ALL]", s.CapDrop)
	}
	if len(s.CapAdd) != 0 || s.Privileged {
		t.Errorf("cap_add = %v, privileged = %v: want none", s.CapAdd, s.Privileged)
	}
	if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("security_opt = %v, want no-new-privileges:true", s.SecurityOpt)
	}
}

func wantDep(t *testing.T, s types.ServiceConfig, dep, condition string) {
	t.Helper()
	d, ok := s.DependsOn[dep]
	if !ok {
		t.Errorf("%s: no depends_on %s", s.Name, dep)
		return
	}
	if d.Condition != condition {
		t.Errorf("%s: depends_on %s condition = %q, want %q", s.Name, dep, d.Condition, condition)
	}
}

func publishes(s types.ServiceConfig, port int32) bool {
	for _, p := range s.Ports {
		if p.Target == uint32(port) && p.Published == strconv.Itoa(int(port)) && p.HostIP == "127.0.0.1" {
			return true
		}
	}
	return false
}
