package command_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ordersys/ordersys/pkg/bootstrap"
	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/config"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/ordersys/ordersys/pkg/pii"
	"github.com/ordersys/ordersys/pkg/telemetry"
	"github.com/ordersys/ordersys/pkg/testinfra"
	"github.com/ordersys/ordersys/services/command/internal/app"
	commandserver "github.com/ordersys/ordersys/services/command/internal/server"
)

// recordedSpans holds every span ended in this test binary (TestMain registers it).
var recordedSpans = tracetest.NewSpanRecorder()

// shared is the migrated keyspace every test and benchmark of this binary uses (each with fresh
// aggregate ids), made on first use and dropped by TestMain.
var (
	sharedKeyspace = cqltest.NewShared("command")
	sharedOnce     sync.Once
	shared         *sharedEnv
)

type sharedEnv struct {
	keyspace string
	session  *gocql.Session
	// store seals customers' personal data with keys (as the command service with a KEK).
	store *cql.EventStore
	keys  *pii.Store
	// kekFile holds the KEK of keys, which the services the tests run read too.
	kekFile string
}

func TestMain(m *testing.M) {
	flag.Parse()
	// Valid, sampled spans everywhere, so that traceparents are recorded; nothing exported.
	shutdown, err := telemetry.Setup(context.Background(), telemetry.Options{ServiceName: "command-test", SampleRatio: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Ended spans are recorded, for the tests that check the attributes of the server spans.
	if tp, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); ok {
		tp.RegisterSpanProcessor(recordedSpans)
	}
	code := m.Run()
	_ = shutdown(context.Background())
	if err := sharedKeyspace.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	if shared != nil {
		_ = os.RemoveAll(filepath.Dir(shared.kekFile))
	}
	os.Exit(code)
}

// env requires Cassandra (skipping under -short) and returns the shared keyspace.
func env(t testing.TB) *sharedEnv {
	t.Helper()
	s, ks := sharedKeyspace.Session(t)
	sharedOnce.Do(func() { shared = newSharedEnv(s, ks) })
	return shared
}

func newSharedEnv(s *gocql.Session, ks string) *sharedEnv {
	// No key cache: the key stores of the tests and of the services they run see each other's
	// erasures at once.
	keys, kekFile, err := pii.EphemeralFile(s, pii.Options{CacheTTL: -1})
	if err != nil {
		panic(err)
	}
	reg := codec.NewRegistry()
	reg.SetSealer(codec.PIISealer{Keys: keys})
	return &sharedEnv{keyspace: ks, session: s, store: cql.NewEventStore(s, reg, cql.Options{}), keys: keys, kekFile: kekFile}
}

// server is a running command service: the real gRPC server on 127.0.0.1:0 with the real store.
type server struct {
	svc       *app.Service
	orders    *app.OrderHandler
	customers *app.CustomerHandler
	store     *cql.EventStore
	registry  *prometheus.Registry
	grpc      *grpcx.Server
	conn      *grpc.ClientConn
	oc        ordersv1.OrderCommandServiceClient
	cc        ordersv1.CustomerCommandServiceClient
	customer  string // an ACTIVE customer orders may belong to (see activeCustomer)
}

// activeCustomer returns an ACTIVE customer registered through s (once per server), for the
// tests whose orders need one.
func (s *server) activeCustomer(t testing.TB) string {
	t.Helper()
	if s.customer == "" {
		s.customer = registerCustomer(t, s)
	}
	return s.customer
}

// registerCustomer registers a new ACTIVE customer through s and returns its id.
func registerCustomer(t testing.TB, s *server) string {
	t.Helper()
	id := ids.New()
	_, err := s.cc.RegisterCustomer(ctxT(t), &ordersv1.RegisterCustomerRequest{
		CustomerId: id, Email: "c-" + id[:8] + "@example.com", FirstName: "Test", LastName: "Customer"})
	if err != nil {
		t.Fatalf("register customer %s: %v", id, err)
	}
	return id
}

// quietLogger drops log records (the tests provoke failures on purpose).
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// serverOptions are what a test varies in the command service it runs.
type serverOptions struct {
	// SnapshotEvery and MaxRetries are the configuration's.
	SnapshotEvery, MaxRetries int
	// Session is the service's CQL session (nil: the shared keyspace's).
	Session *gocql.Session
	// ClearPII runs the service without a KEK: personal data is stored in clear.
	ClearPII bool
	// GRPC is the gRPC server's TLS, tokens and request bounds (nil: the defaults).
	GRPC *config.GRPCServer
}

// startServer runs the command service as main does (commandserver.Run, in its two halves to
// reach the parts) on the shared keyspace with opts, its gRPC and metrics servers on
// 127.0.0.1:0, its clients dialling with dial (default: insecure); it stops when t ends.
func startServer(t testing.TB, opts serverOptions, dial ...grpc.DialOption) *server {
	t.Helper()
	e := env(t)
	var cfg commandserver.Config
	if err := config.LoadFrom(&cfg, noEnv); err != nil { // the defaults
		t.Fatal(err)
	}
	cfg.CQL.Keyspace, cfg.ShutdownTimeout = e.keyspace, 30*time.Second
	cfg.PII = config.PII{KEKFile: e.kekFile, KeyCacheTTL: -1}
	cfg.SnapshotEvery, cfg.MaxRetries = opts.SnapshotEvery, opts.MaxRetries
	if opts.GRPC != nil {
		cfg.GRPC = *opts.GRPC
	}
	if opts.ClearPII {
		cfg.PII.KEKFile = ""
	}
	session := opts.Session
	if session == nil {
		session = e.session
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := commandserver.New(ctx, cfg, quietLogger, bootstrap.Listeners{GRPC: testinfra.Listen(t), Metrics: testinfra.Listen(t), Session: session, HealthInterval: testHealthInterval})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	if len(dial) == 0 {
		dial = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpcx.ClientConn(srv.Listener.Addr().String(), dial...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer wcancel()
		if err := srv.Service.Wait(wctx); err != nil {
			t.Errorf("background snapshots: %v", err)
		}
	})
	return &server{
		svc: srv.Service, orders: srv.Orders, customers: srv.Customers, store: srv.Store, registry: srv.Metrics.Registry,
		grpc: srv.GRPC, conn: conn,
		oc: ordersv1.NewOrderCommandServiceClient(conn), cc: ordersv1.NewCustomerCommandServiceClient(conn),
	}
}

// testHealthInterval is how often a test server's health watch probes its dependencies (the
// services' own 5 s would leave a test waiting, or passing before any probe ran).
const testHealthInterval = 50 * time.Millisecond

// noEnv is an environment in which no variable is set.
func noEnv(string) (string, bool) { return "", false }

// defaultServer is a server on the shared keyspace with snapshots every 10 events and 5 retries.
func defaultServer(t testing.TB) *server {
	return startServer(t, serverOptions{SnapshotEvery: 10, MaxRetries: 5})
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
