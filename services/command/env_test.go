package command_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
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

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/ordersys/ordersys/pkg/pii"
	"github.com/ordersys/ordersys/pkg/telemetry"
	"github.com/ordersys/ordersys/services/command/internal/app"
	"github.com/ordersys/ordersys/services/command/internal/grpcapi"
	"github.com/ordersys/ordersys/services/command/internal/storage"
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
	keys, err := pii.Ephemeral(s, pii.Options{})
	if err != nil {
		panic(err)
	}
	reg := codec.NewRegistry()
	reg.SetSealer(codec.PIISealer{Keys: keys})
	return &sharedEnv{keyspace: ks, session: s, store: cql.NewEventStore(s, reg, cql.Options{}), keys: keys}
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

// startServer runs a command service on store (and session, for rejections) with opts; it stops
// when t ends.
func startServer(t testing.TB, store *cql.EventStore, session *gocql.Session, opts app.Options) *server {
	t.Helper()
	return startSecuredServer(t, store, session, opts, grpcx.Security{}, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// startSecuredServer is startServer with the server protected by sec, its clients dialling with
// dial (transport credentials for sec's TLS, or insecure ones).
func startSecuredServer(t testing.TB, store *cql.EventStore, session *gocql.Session, opts app.Options, sec grpcx.Security, dial ...grpc.DialOption) *server {
	t.Helper()
	reg := prometheus.NewRegistry()
	if opts.Metrics == nil {
		opts.Metrics = app.NewMetrics(reg)
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger
	}
	if opts.Rejections == nil {
		opts.Rejections = storage.NewRejectionLog(cql.NewRejections(session, 0))
	}
	svc := app.NewService(store, opts)
	keys := env(t).keys
	customers := app.NewCustomerHandler(svc, codec.SealedCustomerSnapshots{Keys: keys})
	s := &server{
		svc:       svc,
		orders:    app.NewOrderHandler(svc, codec.OrderSnapshotCodec{}, customers),
		customers: customers,
		store:     store,
		registry:  reg,
	}
	s.grpc = grpcapi.NewServer(s.orders, s.customers, keys, grpcx.ServerOptions{Logger: quietLogger, Registry: reg, ServiceName: "command", Security: sec})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.grpc.ServeListener(ctx, ln) }()
	conn, err := grpcx.ClientConn(ln.Addr().String(), dial...)
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
		if err := svc.Wait(wctx); err != nil {
			t.Errorf("background snapshots: %v", err)
		}
	})
	s.conn = conn
	s.oc = ordersv1.NewOrderCommandServiceClient(conn)
	s.cc = ordersv1.NewCustomerCommandServiceClient(conn)
	return s
}

// defaultServer is a server on the shared keyspace with snapshots every 10 events and 5 retries.
func defaultServer(t testing.TB) *server {
	e := env(t)
	return startServer(t, e.store, e.session, app.Options{SnapshotEvery: 10, MaxRetries: 5})
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
