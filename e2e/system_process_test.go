package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ordersys/ordersys/pkg/testinfra"
)

// build compiles the five binaries from the workspace (the build cache makes repeats cheap).
func (s *system) build() error {
	if err := os.MkdirAll(s.binDir, 0o755); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	args := []string{"build", "-o", s.binDir + string(filepath.Separator)}
	for _, name := range append(append([]string{}, serviceNames...), "migrate", "ordersysctl") {
		args = append(args, mainPackages[name])
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = s.root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build of the services failed: %w\n%s", err, out)
	}
	s.logf("built command, query, cdc-relay, projector, migrate, ordersysctl in %s", time.Since(start).Round(time.Millisecond))
	return nil
}

// serviceEnv is the environment of the service (or migrate) name: this process's environment
// without any ORDERSYS_* (a developer's settings must not leak in), plus the test's settings.
func (s *system) serviceEnv(name string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ORDERSYS_") {
			env = append(env, kv)
		}
	}
	otlp := ""
	if s.jaeger != nil {
		otlp = s.jaegerOTLP
	}
	env = append(env,
		"ORDERSYS_CQL_HOSTS="+strings.Join(s.cqlHosts(), ","),
		"ORDERSYS_CQL_KEYSPACE="+s.keyspace,
		"ORDERSYS_KAFKA_BROKERS="+strings.Join(s.brokers, ","),
		"ORDERSYS_OTLP_ENDPOINT="+otlp,
		"ORDERSYS_TRACE_SAMPLE_RATIO=1",
		"ORDERSYS_PROJECTOR_GROUP="+s.group,
		"ORDERSYS_LOG_LEVEL=info",
		"ORDERSYS_SHUTDOWN_TIMEOUT=10s",
	)
	switch name {
	case "command", "cdc-relay", "projector": // the binaries that read the topic names
		env = append(env, "ORDERSYS_ORDER_TOPIC="+s.topics["Order"], "ORDERSYS_CUSTOMER_TOPIC="+s.topics["Customer"])
	}
	switch name {
	case "command", "projector", "query": // the binaries that seal or open personal data
		env = append(env, "ORDERSYS_PII_KEK_FILE="+s.kekFile)
	}
	env = append(env, s.extraEnv...)
	// E2E_ORDERSYS_X=v passes ORDERSYS_X=v to every service (tuning for the benchmark), last wins.
	for _, kv := range os.Environ() {
		if rest, ok := strings.CutPrefix(kv, "E2E_ORDERSYS_"); ok {
			env = append(env, "ORDERSYS_"+rest)
		}
	}
	return env
}

// cqlHosts are the Cassandra contact points of the system.
func (s *system) cqlHosts() []string {
	if s.secure != nil {
		return s.secure.cqlHosts
	}
	if s.cql != nil {
		return s.cql
	}
	return testinfra.CQLHosts()
}

// migrate runs the migrate binary to its end, with args (a job after the schema: reseal-pii,
// backup FILE, restore FILE).
func (s *system) migrate(args ...string) error {
	env := append(s.serviceEnv("migrate"), "ORDERSYS_CQL_PROFILE=portable", "ORDERSYS_MIGRATE_TIMEOUT="+migrateTimeout.String())
	start := time.Now()
	p, err := s.spawn("migrate", filepath.Join(s.binDir, "migrate"), args, env)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-time.After(migrateTimeout + 30*time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("migrate did not finish within %s:\n%s", migrateTimeout, tail(p.log, 20))
	}
	if p.err != nil {
		return fmt.Errorf("migrate %q of keyspace %s failed (%v):\n%s", args, s.keyspace, p.err, tail(p.log, 20))
	}
	s.logf("migrate %q of keyspace %s done in %s", args, s.keyspace, time.Since(start).Round(time.Millisecond))
	return nil
}

// spawn starts bin with args and env in its own process group, its output in <runDir>/<name>.log.
func (s *system) spawn(name, bin string, args, env []string) (*process, error) {
	logPath := filepath.Join(s.runDir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Dir = s.runDir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL} // dies with the test process, even one that panicked on a timeout
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// waitServing polls name's grpc.health.v1.Health/Check (service "") until SERVING, for up to
// healthTimeout.
func (s *system) waitServing(name string) error { return s.waitServingWithin(name, healthTimeout) }

// waitServingWithin polls name's grpc.health.v1.Health/Check (service "") until SERVING, for up
// to timeout.
func (s *system) waitServingWithin(name string, timeout time.Duration) error {
	conn, err := s.dial(s.grpcAddr[name])
	if err != nil {
		return err
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	p := s.procs[name]
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for {
		if !p.running() {
			return fmt.Errorf("%s exited during start-up (%v); last lines of %s:\n%s", name, p.err, rel(s.root, p.log), tail(p.log, 30))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil {
			if resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
				s.logf("%s SERVING", name)
				return nil
			}
			last = resp.GetStatus().String()
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not SERVING after %s (last: %s); last lines of %s:\n%s", name, timeout, last, rel(s.root, p.log), tail(p.log, 30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *system) dial(addr string) (*grpc.ClientConn, error) {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if s.secure != nil {
		opts = s.secure.dialOptions()
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("grpc client for %s: %w", addr, err)
	}
	s.conns = append(s.conns, conn)
	return conn, nil
}

// dumpLogs prints the last lines of every service's log (on a failed test).
func (s *system) dumpLogs(tb testing.TB, lines int) {
	tb.Helper()
	for _, name := range s.instances() {
		if p := s.procs[name]; p != nil {
			state := "running"
			if !p.running() {
				state = fmt.Sprintf("exited: %v", p.err)
			}
			tb.Logf("---- %s (%s), last %d lines of %s:\n%s", name, state, lines, rel(s.root, p.log), tail(p.log, lines))
		}
	}
}

// checkAlive fails tb if a service has exited.
func (s *system) checkAlive(tb testing.TB) {
	tb.Helper()
	for _, name := range s.instances() {
		if p := s.procs[name]; p != nil && !p.running() {
			tb.Errorf("%s exited during the test (%v); last lines:\n%s", name, p.err, tail(p.log, 30))
		}
	}
}

// metrics fetches name's /metrics page.
func (s *system) metrics(name string) (string, error) {
	addr := s.metricsAddr[name]
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s/metrics: %s", addr, resp.Status)
	}
	return b.String(), nil
}
