package app_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gocql/gocql"
	kafkago "github.com/segmentio/kafka-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ordersys/ordersys/pkg/bootstrap"
	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/kafka/kafkatest"
	"github.com/ordersys/ordersys/pkg/telemetry"
	"github.com/ordersys/ordersys/pkg/testinfra"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/app"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/server"
)

// childEnv makes the test binary run the relay instead of the tests (the kill -9 tests run it
// as a child process).
const childEnv = "ORDERSYS_RELAY_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}

func childMain() int {
	cfg, err := bootstrap.LoadConfig(app.Defaults())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	log := telemetry.NewLogger(os.Stderr, server.ServiceName, cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := server.Run(ctx, cfg, log, bootstrap.Listeners{}); err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		return 1
	}
	return 0
}

// env is one test's keyspace, topics and event store.
type env struct {
	t             testing.TB
	session       *gocql.Session
	keyspace      string
	kafkaEnv      map[string]string // the ORDERSYS_KAFKA_* variables of the broker used
	kafka         okafka.Cluster
	orderTopic    string
	customerTopic string
	store         *cql.EventStore
}

// newEnv makes a test's keyspace and topic names; kafkaEnv holds the ORDERSYS_KAFKA_* variables
// of the broker (nil: the shared one, testinfra.KafkaBrokers).
func newEnv(t testing.TB, kafkaEnv map[string]string) *env {
	t.Helper()
	if kafkaEnv == nil {
		kafkaEnv = map[string]string{"ORDERSYS_KAFKA_BROKERS": strings.Join(testinfra.KafkaBrokers(), ",")}
	}
	kc, err := kafkatest.ClusterOf(kafkaEnv)
	if err != nil {
		t.Fatal(err)
	}
	s, ks := cqltest.Keyspace(t)
	e := &env{t: t, session: s, keyspace: ks, kafkaEnv: kafkaEnv, kafka: kc,
		orderTopic: testinfra.TopicName(t, "order-events"), customerTopic: testinfra.TopicName(t, "customer-events")}
	// The recovery sweeper's first pass reads 24 hours of buckets; this keyspace is minutes old.
	if err := s.Query(`INSERT INTO relay_checkpoints (name, shard, bucket, updated_at) VALUES ('intent-sweeper', 0, ?, ?)`,
		cql.Bucket(time.Now().Add(-time.Minute)), time.Now()).Exec(); err != nil {
		t.Fatal(err)
	}
	e.store = cql.NewEventStore(s, codec.NewRegistry(), cql.Options{Topics: map[string]string{"Order": e.orderTopic, "Customer": e.customerTopic}})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, done := kc.Client(30 * time.Second)
		defer done()
		_, _ = c.DeleteTopics(ctx, &kafkago.DeleteTopicsRequest{Topics: []string{e.orderTopic, e.customerTopic,
			okafka.DLQTopic(e.orderTopic), okafka.DLQTopic(e.customerTopic)}})
	})
	return e
}

// vars is the relay's environment for this test.
func (e *env) vars(extra map[string]string) map[string]string {
	v := map[string]string{
		"ORDERSYS_CQL_HOSTS":               strings.Join(testinfra.CQLHosts(), ","),
		"ORDERSYS_CQL_KEYSPACE":            e.keyspace,
		"ORDERSYS_ORDER_TOPIC":             e.orderTopic,
		"ORDERSYS_CUSTOMER_TOPIC":          e.customerTopic,
		"ORDERSYS_RELAY_START_LOOKBACK":    "5m",
		"ORDERSYS_RELAY_RESCAN_WINDOW":     "5s",
		"ORDERSYS_RELAY_LEASE_TTL":         "4s",
		"ORDERSYS_RELAY_RECOVERY_INTERVAL": "1s",
		"ORDERSYS_RELAY_HEALTH_INTERVAL":   "500ms",
		"ORDERSYS_KAFKA_PARTITIONS":        "3",
		"ORDERSYS_OTLP_ENDPOINT":           "",
		"ORDERSYS_LOG_LEVEL":               "info",
		"ORDERSYS_GRPC_ADDR":               "127.0.0.1:0",
		"ORDERSYS_METRICS_ADDR":            "127.0.0.1:0",
	}
	maps.Copy(v, e.kafkaEnv)
	for k, x := range extra {
		v[k] = x
	}
	return v
}

func (e *env) config(extra map[string]string) app.Config {
	v := e.vars(extra)
	cfg, err := app.LoadConfigFrom(func(k string) (string, bool) { x, ok := v[k]; return x, ok })
	if err != nil {
		e.t.Fatal(err)
	}
	return cfg
}

// relayProc is a relay running in this process or as a child process.
type relayProc struct {
	t           testing.TB
	name        string
	metricsAddr string
	grpcAddr    string
	logPath     string
	cancel      context.CancelFunc
	done        chan error
	cmd         *exec.Cmd
}

// startInProcess runs a relay in this process until the test ends or stop is called.
func (e *env) startInProcess(name string, extra map[string]string) *relayProc {
	e.t.Helper()
	cfg := e.config(extra)
	gl, ml := listenFresh(e.t), listenFresh(e.t)
	p := &relayProc{t: e.t, name: name, metricsAddr: ml.Addr().String(), grpcAddr: gl.Addr().String(),
		logPath: filepath.Join(e.t.TempDir(), name+".log"), done: make(chan error, 1)}
	f, err := os.Create(p.logPath)
	if err != nil {
		e.t.Fatal(err)
	}
	log := slog.New(telemetry.NewTraceHandler(slog.NewJSONHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))).With("relay", name)
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { p.done <- server.Run(ctx, cfg, log, bootstrap.Listeners{GRPC: gl, Metrics: ml}); f.Close() }()
	e.t.Cleanup(func() { p.stop(); p.dumpLogOnFailure() })
	return p
}

// handedOut holds every loopback address this test binary gave a relay: the kernel may hand a
// port that freeAddr closed to a later listener, and a child relay binding it then fails.
var handedOut sync.Map

// listenFresh listens on a loopback port no relay of this test binary was given before.
func listenFresh(t testing.TB) net.Listener {
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if _, taken := handedOut.LoadOrStore(ln.Addr().String(), true); !taken {
			return ln
		}
		ln.Close()
	}
	t.Fatal("no fresh loopback port in 100 tries")
	return nil
}

// freeAddr returns a loopback address free now and never handed to another relay of this
// binary (a child process binds it).
func freeAddr(t testing.TB) string {
	ln := listenFresh(t)
	defer ln.Close()
	return ln.Addr().String()
}

// startChild runs a relay as a child process (this test binary, see TestMain).
func (e *env) startChild(name string, extra map[string]string) *relayProc {
	e.t.Helper()
	p := &relayProc{t: e.t, name: name, metricsAddr: freeAddr(e.t), grpcAddr: freeAddr(e.t),
		logPath: filepath.Join(e.t.TempDir(), name+".log")}
	vars := e.vars(extra)
	vars["ORDERSYS_METRICS_ADDR"], vars["ORDERSYS_GRPC_ADDR"] = p.metricsAddr, p.grpcAddr
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	f, err := os.Create(p.logPath)
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	p.cmd, p.done = cmd, make(chan error, 1)
	go func() { p.done <- cmd.Wait(); f.Close() }()
	e.t.Cleanup(func() { p.kill(); p.dumpLogOnFailure() })
	return p
}

// stop ends the relay gracefully (nothing when it has stopped already).
func (p *relayProc) stop() {
	if p.cmd == nil && p.cancel == nil {
		return
	}
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	} else if p.cancel != nil {
		p.cancel()
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Errorf("relay %s did not stop within 30s", p.name)
	}
	p.cmd, p.cancel = nil, nil
}

// kill ends a child relay with SIGKILL: no lease release, no last checkpoint.
func (p *relayProc) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

func (p *relayProc) dumpLogOnFailure() {
	if !p.t.Failed() {
		return
	}
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	p.t.Logf("last log lines of relay %s:\n%s", p.name, strings.Join(lines, "\n"))
}

// metrics scrapes the relay's /metrics into name{labels} → value.
func (p *relayProc) metrics() (map[string]float64, error) {
	resp, err := http.Get("http://" + p.metricsAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// metric returns one value (0 when absent or unreachable).
func (p *relayProc) metric(name string) float64 {
	m, err := p.metrics()
	if err != nil {
		return 0
	}
	return m[name]
}

// sum adds every series of a metric family.
func (p *relayProc) sum(family string) float64 {
	m, err := p.metrics()
	if err != nil {
		return 0
	}
	var s float64
	for k, v := range m {
		if k == family || strings.HasPrefix(k, family+"{") {
			s += v
		}
	}
	return s
}

// shards returns the outbox shards the relay says it publishes (nil when it does not answer).
func (p *relayProc) shards() []int32 {
	conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := ordersv1.NewRelayAdminServiceClient(conn).GetRelayStatus(ctx, &ordersv1.GetRelayStatusRequest{})
	if err != nil {
		return nil
	}
	return st.GetShards()
}
