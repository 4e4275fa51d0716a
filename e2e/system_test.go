package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

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
	cqlProxy bool     // cql is a fault proxy in front of the shared Cassandra: stop drops the keyspace as without it
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
