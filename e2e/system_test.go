package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/pii"
	"github.com/ordersys/ordersys/pkg/testinfra"
)

// The services under test, in start order, and the packages of their main functions.
var (
	serviceNames = []string{"projector", "cdc-relay", "query", "command"}
	mainPackages = map[string]string{
		"command":   "github.com/ordersys/ordersys/services/command/cmd/command",
		"migrate":   "github.com/ordersys/ordersys/services/command/cmd/migrate",
		"query":     "github.com/ordersys/ordersys/services/query/cmd/query",
		"cdc-relay": "github.com/ordersys/ordersys/services/cdc-relay/cmd/cdc-relay",
		"projector": "github.com/ordersys/ordersys/services/projector/cmd/projector",
		// The operators' CLI, built with the services (not started).
		"ordersysctl": "github.com/ordersys/ordersys/services/ordersysctl/cmd/ordersysctl",
	}
)

// Time limits of the system's start and stop, sized for a busy 2-core machine.
const (
	buildTimeout   = 10 * time.Minute
	migrateTimeout = 3 * time.Minute
	healthTimeout  = 2 * time.Minute
	jaegerTimeout  = time.Minute
	stopTimeout    = 20 * time.Second
)

// system is the running ordersys: four service processes, optionally a Jaeger, one keyspace.
type system struct {
	root     string // repository root
	runDir   string // .state/e2e/<run>: binaries, logs, Jaeger config
	binDir   string // preset: use these binaries
	builtBin bool   // binDir was built by this run (and is removed by stop)
	keyspace string
	kekFile  string   // ORDERSYS_PII_KEK_FILE of command, projector and query
	group    string   // the projector's consumer group
	brokers  []string // preset: these brokers, else the shared ones
	cql      []string // preset: these (private) Cassandra nodes, else the shared ones
	// topics are this run's own Kafka topics, by aggregate type ("Order", "Customer"), given to
	// command, cdc-relay and projector through ORDERSYS_ORDER_TOPIC / ORDERSYS_CUSTOMER_TOPIC so
	// that the run shares no topic with a `make run` system; deleted by stop.
	topics map[string]string

	jaeger     *process // nil when jaegerSkip says why
	jaegerURL  string   // http://127.0.0.1:<port> of the Jaeger query API
	jaegerOTLP string   // 127.0.0.1:<port> of its OTLP/gRPC receiver
	jaegerSkip string

	grpcAddr    map[string]string
	metricsAddr map[string]string
	procs       map[string]*process
	conns       []*grpc.ClientConn

	orders    ordersv1.OrderCommandServiceClient
	customers ordersv1.CustomerCommandServiceClient
	query     ordersv1.OrderQueryServiceClient
	custQuery ordersv1.CustomerQueryServiceClient

	progress bytes.Buffer // start-up log, printed when the start fails

	// secure, when set, is a system on private TLS-only servers with TLS and tokens on every
	// service (secure_test.go); nil is the plaintext system on the shared servers.
	secure *secureSetup
	// extraEnv are ORDERSYS_* settings added to every service and migrate.
	extraEnv []string
	// relays is the number of relay replicas (0 or 1: one, named cdc-relay; more are named
	// cdc-relay-2, cdc-relay-3, ...).
	relays int
	// instanceEnv is each instance's environment, kept for restarts.
	instanceEnv map[string][]string
}

// instances are the names of the service processes in start order: serviceNames, with the
// extra relay replicas after the first.
func (s *system) instances() []string {
	var out []string
	for _, name := range serviceNames {
		out = append(out, name)
		if name == "cdc-relay" {
			for i := 2; i <= s.relays; i++ {
				out = append(out, fmt.Sprintf("cdc-relay-%d", i))
			}
		}
	}
	return out
}

// binaryOf returns the binary an instance runs ("cdc-relay-2" runs cdc-relay).
func binaryOf(instance string) string {
	if strings.HasPrefix(instance, "cdc-relay-") {
		return "cdc-relay"
	}
	return instance
}

// launch starts (or starts again) the instance with its environment and addresses; its log
// file is appended to.
func (s *system) launch(name string) error {
	p, err := s.spawn(name, filepath.Join(s.binDir, binaryOf(name)), nil, s.instanceEnv[name])
	if err != nil {
		return err
	}
	s.procs[name] = p
	s.logf("started %s (pid %d) on %s, metrics %s", name, p.cmd.Process.Pid, s.grpcAddr[name], s.metricsAddr[name])
	return nil
}

// process is one child process with its log file.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
}

func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

var (
	sysOnce sync.Once
	sys     *system
	sysErr  error
)

// TestMain stops the shared system after every test and benchmark of the package has run, and
// fails the run when a service did not stop cleanly (exit status 0 within stopTimeout of SIGTERM).
func TestMain(m *testing.M) {
	code := m.Run()
	if sys != nil {
		if unclean := sys.stop(); len(unclean) > 0 {
			fmt.Fprintf(os.Stderr, "e2e: FAIL: not a clean stop on SIGTERM: %s\n", strings.Join(unclean, "; "))
			code = 1
		}
	}
	os.Exit(code)
}

// getSystem starts the system on first use (shared by the test and the benchmark) and returns it.
// Under -short it skips: the e2e needs the real servers.
func getSystem(tb testing.TB) *system {
	tb.Helper()
	if testing.Short() {
		tb.Skip("e2e: needs the real Cassandra, Kafka and the service binaries; skipped under -short")
	}
	sysOnce.Do(func() {
		s := &system{}
		sysErr = s.start()
		sys = s
		if sysErr != nil {
			fmt.Fprintf(os.Stderr, "e2e: start-up log:\n%s", s.progress.String())
		}
	})
	if sysErr != nil {
		tb.Fatalf("e2e: start the system: %v", sysErr)
	}
	return sys
}

func (s *system) logf(format string, args ...any) {
	line := fmt.Sprintf("e2e %s: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
	s.progress.WriteString(line)
	if testing.Verbose() {
		os.Stderr.WriteString(line)
	}
}

func (s *system) start() error {
	// ---------------------------------------------------------------------------------------
	// Where things go

	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	s.root = filepath.Dir(wd) // the test runs in <root>/e2e
	run := time.Now().Format("20060102-150405") + "-" + randomHex(3)
	s.runDir = filepath.Join(s.root, ".state", "e2e", run)
	if err := os.MkdirAll(s.runDir, 0o755); err != nil {
		return err
	}
	liveRuns.Store(run, true)
	// The key-encryption key of customers' personal data: every run encrypts it (docs/privacy.md).
	kek, err := pii.GenerateKEK()
	if err != nil {
		return err
	}
	s.kekFile = filepath.Join(s.runDir, "pii-kek.json")
	if err := os.WriteFile(s.kekFile, kek, 0o600); err != nil {
		return err
	}
	s.keyspace = "e2e_" + strings.ReplaceAll(run, "-", "_")
	s.group = "e2e-projector-" + run
	s.topics = map[string]string{"Order": "e2e-" + run + "-order-events", "Customer": "e2e-" + run + "-customer-events"}
	shared := s.brokers == nil && s.secure == nil // else private servers, which answered when they started
	if s.brokers == nil {
		s.brokers = testinfra.KafkaBrokers()
	}
	s.logf("run %s: logs in %s, keyspace %s, projector group %s, topics %s and %s", run, rel(s.root, s.runDir),
		s.keyspace, s.group, s.topics["Order"], s.topics["Customer"])

	// ---------------------------------------------------------------------------------------
	// The real servers must answer (make infra-up)

	if shared {
		if _, err := testinfra.PingCassandra(testinfra.CQLHosts(), 10*time.Second); err != nil {
			return fmt.Errorf("%w (start the servers with: make infra-up)", err)
		}
		pctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err = testinfra.PingKafka(pctx, s.brokers)
		cancel()
		if err != nil {
			return fmt.Errorf("%w (start the servers with: make infra-up)", err)
		}
	}

	// ---------------------------------------------------------------------------------------
	// Binaries

	if s.binDir != "" {
		s.logf("using the binaries in %s", s.binDir)
	} else if dir := os.Getenv("E2E_BIN_DIR"); dir != "" {
		s.binDir = dir
		s.logf("using prebuilt binaries in %s", dir)
	} else {
		s.binDir = filepath.Join(s.runDir, "bin")
		s.builtBin = true
		if err := s.build(); err != nil {
			return err
		}
	}

	// ---------------------------------------------------------------------------------------
	// Jaeger (the only part that may be missing: its absence skips the tracing checks alone)

	if s.secure != nil {
		s.jaegerSkip = "the secure system exports no traces"
	} else if err := s.startJaeger(); err != nil {
		return err
	}

	// ---------------------------------------------------------------------------------------
	// Schema

	if err := s.migrate(); err != nil {
		return err
	}

	// ---------------------------------------------------------------------------------------
	// Services

	s.grpcAddr = map[string]string{}
	s.metricsAddr = map[string]string{}
	s.procs = map[string]*process{}
	s.instanceEnv = map[string][]string{}
	for _, name := range s.instances() {
		s.grpcAddr[name] = freeAddr()
		s.metricsAddr[name] = freeAddr()
		s.instanceEnv[name] = append(s.serviceEnv(binaryOf(name)),
			"ORDERSYS_GRPC_ADDR="+s.grpcAddr[name],
			"ORDERSYS_METRICS_ADDR="+s.metricsAddr[name],
		)
		if err := s.launch(name); err != nil {
			return err
		}
	}
	for _, name := range s.instances() {
		if err := s.waitServing(name); err != nil {
			return err
		}
	}

	// ---------------------------------------------------------------------------------------
	// Clients

	cmdConn, err := s.dial(s.grpcAddr["command"])
	if err != nil {
		return err
	}
	queryConn, err := s.dial(s.grpcAddr["query"])
	if err != nil {
		return err
	}
	s.orders = ordersv1.NewOrderCommandServiceClient(cmdConn)
	s.customers = ordersv1.NewCustomerCommandServiceClient(cmdConn)
	s.query = ordersv1.NewOrderQueryServiceClient(queryConn)
	s.custQuery = ordersv1.NewCustomerQueryServiceClient(queryConn)
	s.logf("all four services SERVING")
	return nil
}

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

// waitServing polls name's grpc.health.v1.Health/Check (service "") until SERVING.
func (s *system) waitServing(name string) error {
	conn, err := s.dial(s.grpcAddr[name])
	if err != nil {
		return err
	}
	client := healthpb.NewHealthClient(conn)
	p := s.procs[name]
	deadline := time.Now().Add(healthTimeout)
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
			return fmt.Errorf("%s not SERVING after %s (last: %s); last lines of %s:\n%s", name, healthTimeout, last, rel(s.root, p.log), tail(p.log, 30))
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

// ---------------------------------------------------------------------------------------------
// small helpers

// freeAddr returns 127.0.0.1:<port> of a port free right now.
func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("e2e: no free port: %v", err))
	}
	defer ln.Close()
	return ln.Addr().String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func rel(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

// keepRuns is how many run folders (logs) .state/e2e keeps.
const keepRuns = 5

// liveRuns holds the names of the run folders of the systems this test process has started and
// not stopped yet: pruneRuns never removes them (the shared system's folder holds the binaries
// the other systems run).
var liveRuns sync.Map

// pruneRuns removes all but the newest keep run folders under dir (their names sort by time),
// and never the folder of a system still running.
func pruneRuns(dir string, keep int) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	var runs []string
	for _, e := range entries {
		if _, live := liveRuns.Load(e.Name()); live {
			keep--
			continue
		}
		if e.IsDir() && len(e.Name()) > 8 && e.Name()[0] >= '0' && e.Name()[0] <= '9' {
			runs = append(runs, e.Name())
		}
	}
	sort.Strings(runs)
	for len(runs) > keep {
		_ = os.RemoveAll(filepath.Join(dir, runs[0]))
		runs = runs[1:]
	}
}

// errNotYet marks a condition polled for that has not been reached yet.
var errNotYet = errors.New("not yet")

// eventually calls f until it returns nil or timeout passes; it returns f's last error.
func eventually(timeout, every time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(every)
	}
}
