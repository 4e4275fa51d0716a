package app_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	kafkago "github.com/segmentio/kafka-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/kafka/kafkatest"
	"github.com/ordersys/ordersys/pkg/telemetry"
	"github.com/ordersys/ordersys/pkg/testinfra"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/app"
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
	cfg, err := app.LoadConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	log := telemetry.NewLogger(os.Stderr, app.ServiceName, cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Serve(ctx, cfg, log, app.Listeners{}); err != nil {
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
	go func() { p.done <- app.Serve(ctx, cfg, log, app.Listeners{GRPC: gl, Metrics: ml}); f.Close() }()
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

// stop ends the relay gracefully.
func (p *relayProc) stop() {
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

// ---------------------------------------------------------------------------------------------
// Producing events through the real append protocol

var registry = codec.NewRegistry()

// appendOrder appends events from+1..from+n to an order (sequence 1 is OrderCreated) in
// commands of one or two events, and returns when each command was issued, by sequence.
func (e *env) appendOrder(ctx context.Context, agg string, from, n int) (map[int64]time.Time, error) {
	issued := map[int64]time.Time{}
	seq := int64(from)
	for seq < int64(from+n) {
		k := 1 + int(seq%2)
		if int(seq)+k > from+n {
			k = from + n - int(seq)
		}
		req := es.AppendRequest{AggregateID: agg, AggregateType: "Order", ExpectedVersion: seq, CommandID: uuid.NewString(), CommandFingerprint: "fp"}
		start := time.Now()
		ctxSpan := "00-" + strings.ReplaceAll(uuid.NewString(), "-", "") + "-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16] + "-01"
		for i := 0; i < k; i++ {
			s := seq + int64(i) + 1
			var ev es.Event = order.OrderShipped{TrackingNumber: fmt.Sprintf("T%d", s), Carrier: "ups"}
			if s == 1 {
				ev = order.OrderCreated{OrderID: agg, CustomerID: uuid.NewString(),
					Items: []order.Item{{ProductID: uuid.NewString(), Quantity: 1, UnitPriceCents: 500}}, TotalCents: 500}
			}
			env := es.Envelope{EventID: uuid.NewString(), AggregateID: agg, AggregateType: "Order", Sequence: s, Event: ev,
				CausationID: req.CommandID, CorrelationID: req.CommandID, OccurredAt: time.Now().UTC(), TraceParent: ctxSpan}
			if err := registry.EncodeEnvelope(&env); err != nil {
				return issued, err
			}
			req.Events = append(req.Events, env)
			issued[s] = start
		}
		if _, err := e.store.Append(ctx, req); err != nil {
			return issued, fmt.Errorf("append %s@%d: %w", agg, seq, err)
		}
		seq += int64(k)
	}
	return issued, nil
}

// ---------------------------------------------------------------------------------------------
// Consuming the topic as a downstream service would

type record struct {
	agg       string
	seq       int64
	eventID   string
	partition int
	at        time.Time // when this reader got it
	produced  time.Time // the record's timestamp: when the relay handed it to its producer
	headers   []kafkago.Header
	value     []byte
}

// collector reads a topic in a consumer group of its own.
type collector struct {
	mu      sync.Mutex
	recs    []record
	offsets map[[2]int64]bool
	err     error
}

func collect(t testing.TB, kc okafka.Cluster, topic string) *collector {
	c := &collector{offsets: map[[2]int64]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	// The group must see the topic when it joins (the relay creates it too, the same way).
	tctx, tcancel := context.WithTimeout(ctx, time.Minute)
	defer tcancel()
	if err := okafka.EnsureTopics(tctx, kc, okafka.TopicSpec{Name: topic, Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	r := okafka.NewReader(okafka.ReaderConfig{Cluster: kc, GroupID: "test-" + uuid.NewString(), Topics: []string{topic}, MaxWait: 20 * time.Millisecond})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := r.FetchMessage(ctx) // no commits: a test reader needs none, and they would slow it
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				// The broker may be down on purpose: keep reading.
				c.mu.Lock()
				c.err = err
				c.mu.Unlock()
				time.Sleep(200 * time.Millisecond)
				continue
			}
			h, _ := okafka.ParseHeaders(m.Headers)
			c.mu.Lock()
			// A reader that rejoins its group (no offsets committed) reads records again: those
			// are not duplicates on the topic.
			pos := [2]int64{int64(m.Partition), m.Offset}
			if c.offsets[pos] {
				c.mu.Unlock()
				continue
			}
			c.offsets[pos] = true
			c.recs = append(c.recs, record{agg: string(m.Key), seq: h.Sequence, eventID: h.EventID, partition: m.Partition,
				at: time.Now(), produced: m.Time, headers: m.Headers, value: m.Value})
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done; _ = r.Close() })
	return c
}

func (c *collector) records() []record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]record(nil), c.recs...)
}

// distinct counts distinct (aggregate, sequence) pairs received.
func (c *collector) distinct() int {
	seen := map[string]bool{}
	for _, r := range c.records() {
		seen[fmt.Sprintf("%s#%d", r.agg, r.seq)] = true
	}
	return len(seen)
}

func (c *collector) waitDistinct(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for c.distinct() < n {
		if time.Now().After(deadline) {
			t.Fatalf("received %d distinct events of %d within %s", c.distinct(), n, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// first returns when the collector read its first record.
func (c *collector) first() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.recs) == 0 {
		return time.Time{}
	}
	return c.recs[0].at
}

// steadyRate returns records per second between the first and the last record read.
func (c *collector) steadyRate() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.recs) < 2 {
		return 0
	}
	return float64(len(c.recs)-1) / c.recs[len(c.recs)-1].at.Sub(c.recs[0].at).Seconds()
}

// verify checks that every aggregate's events 1..want[agg] arrived, that per aggregate the
// first delivery of each sequence is in sequence order, that every record carries the contract's
// headers and sits on the partition the Java partitioner picks. It returns the number of
// duplicate deliveries.
func verify(t *testing.T, recs []record, want map[string]int64, partitions int) int {
	t.Helper()
	byAgg := map[string][]record{}
	for _, r := range recs {
		byAgg[r.agg] = append(byAgg[r.agg], r)
	}
	dups := 0
	for agg, max := range want {
		seen := map[int64]bool{}
		var firsts []int64
		for _, r := range byAgg[agg] {
			if seen[r.seq] {
				dups++
				continue
			}
			seen[r.seq] = true
			firsts = append(firsts, r.seq)
		}
		for i, s := range firsts {
			if s != int64(i+1) {
				t.Errorf("aggregate %s: first deliveries %v are not 1..%d in order", agg, firsts, max)
				break
			}
		}
		if int64(len(firsts)) != max {
			t.Errorf("aggregate %s: %d distinct events arrived, want %d", agg, len(firsts), max)
		}
	}
	for _, r := range recs[:min(len(recs), 200)] {
		for _, h := range []string{"event_id", "event_type", "event_version", "aggregate_type", "aggregate_id", "sequence", "correlation_id", "causation_id", "traceparent"} {
			if v, ok := okafka.Header(r.headers, h); !ok || (v == "" && h != "correlation_id") {
				t.Errorf("record %s#%d: header %s missing", r.agg, r.seq, h)
			}
		}
		if p := okafka.PartitionForKey([]byte(r.agg), partitions); p != r.partition {
			t.Errorf("record %s#%d on partition %d, Java partitioner says %d", r.agg, r.seq, r.partition, p)
		}
		env, err := codec.UnmarshalEnvelope(r.value)
		if err != nil || env.AggregateID != r.agg || env.Sequence != r.seq {
			t.Errorf("record %s#%d: value is not its envelope (%v)", r.agg, r.seq, err)
		}
	}
	return dups
}

// produce appends events to aggs concurrently, each in commands of one or two events, spread
// over the given duration, and returns the expected last sequence per aggregate.
func (e *env) produce(ctx context.Context, aggs, perAgg int, over time.Duration) (map[string]int64, map[string]map[int64]time.Time, error) {
	want := map[string]int64{}
	issued := map[string]map[int64]time.Time{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, aggs)
	pause := over / time.Duration(max(perAgg, 1))
	for i := 0; i < aggs; i++ {
		agg := uuid.NewString()
		want[agg] = int64(perAgg)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for from := 0; from < perAgg; {
				n := min(2, perAgg-from)
				got, err := e.appendOrder(ctx, agg, from, n)
				mu.Lock()
				if issued[agg] == nil {
					issued[agg] = map[int64]time.Time{}
				}
				for k, v := range got {
					issued[agg][k] = v
				}
				mu.Unlock()
				if err != nil {
					errs <- err
					return
				}
				from += n
				time.Sleep(pause)
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return want, issued, errors.Join(all...)
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p)
	return s[i]
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
