package query_test

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
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"

	"github.com/ordersys/ordersys/pkg/bootstrap"
	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/config"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/ordersys/ordersys/pkg/pii"
	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/pkg/telemetry"
	"github.com/ordersys/ordersys/pkg/testinfra"
	queryserver "github.com/ordersys/ordersys/services/query/internal/server"
)

// shared is the migrated keyspace every test of this binary uses (each with fresh ids), made on
// first use and dropped by TestMain.
var (
	sharedKeyspace = cqltest.NewShared("query")
	sharedOnce     sync.Once
	shared         *sharedEnv
)

type sharedEnv struct {
	keyspace string
	session  *gocql.Session
	store    *cql.EventStore // seals customers' personal data with keys
	keys     *pii.Store
	rm       *readmodel.Store
	orders   readmodel.OrderTables
	custs    readmodel.CustomerTables
	// kekFile holds the KEK of keys, which the services the tests run read too.
	kekFile string
}

func TestMain(m *testing.M) {
	flag.Parse()
	// Valid, sampled spans everywhere (the child spans of the use cases run); nothing exported.
	shutdown, err := telemetry.Setup(context.Background(), telemetry.Options{ServiceName: "query-test", SampleRatio: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
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
	return &sharedEnv{
		keyspace: ks,
		session:  s,
		store:    cql.NewEventStore(s, reg, cql.Options{}),
		keys:     keys,
		rm:       readmodel.NewStore(s, readmodel.Options{}),
		orders:   readmodel.NewOrderTables(s, 1),
		custs:    readmodel.NewCustomerTables(s, 1),
		kekFile:  kekFile,
	}
}

// quietLogger drops log records (the tests provoke failures on purpose).
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// server is a running query service: the real gRPC server on 127.0.0.1:0 on the real stores,
// called through a real gRPC client.
type server struct {
	grpc     *grpcx.Server
	registry *prometheus.Registry
	conn     *grpc.ClientConn
	oq       ordersv1.OrderQueryServiceClient
	cq       ordersv1.CustomerQueryServiceClient
}

// startServer runs the query service as main does (queryserver.Run, in its two halves to reach
// the parts) on the shared keyspace through session (nil: the shared session), its gRPC and
// metrics servers on 127.0.0.1:0; it stops when t ends.
func startServer(t testing.TB, session *gocql.Session) *server {
	t.Helper()
	e := env(t)
	if session == nil {
		session = e.session
	}
	var cfg queryserver.Config
	if err := config.LoadFrom(&cfg, noEnv); err != nil { // the defaults
		t.Fatal(err)
	}
	cfg.CQL.Keyspace, cfg.ShutdownTimeout = e.keyspace, 30*time.Second
	cfg.PII = config.PII{KEKFile: e.kekFile, KeyCacheTTL: -1}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := queryserver.New(ctx, cfg, quietLogger, bootstrap.Listeners{GRPC: testinfra.Listen(t), Metrics: testinfra.Listen(t), Session: session, HealthInterval: testHealthInterval})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	conn, err := grpcx.ClientConn(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &server{grpc: srv.GRPC, registry: srv.Metrics.Registry, conn: conn,
		oq: ordersv1.NewOrderQueryServiceClient(conn), cq: ordersv1.NewCustomerQueryServiceClient(conn)}
}

// testHealthInterval is how often a test server's health watch probes its dependencies (the
// services' own 5 s would leave a test waiting, or passing before any probe ran).
const testHealthInterval = 50 * time.Millisecond

// noEnv is an environment in which no variable is set.
func noEnv(string) (string, bool) { return "", false }

// defaultServer is a server on the shared keyspace with the default options.
func defaultServer(t testing.TB) (*server, *sharedEnv) {
	return startServer(t, nil), env(t)
}

// ctxT returns a context that ends with the test (at most after a minute).
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ms truncates a time to the millisecond precision of a CQL timestamp, in UTC.
func ms(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// items returns n valid order lines.
func items(n int) []order.Item {
	out := make([]order.Item, n)
	for i := range out {
		out[i] = order.Item{ProductID: ids.New(), Quantity: int32(i + 1), UnitPriceCents: int64(100 * (i + 1))}
	}
	return out
}

// rowOrder is a read-model row of a fresh order: created at created, at version, with the
// customer details set.
func rowOrder(id, customerID string, status order.Status, created time.Time, version int64) readmodel.Order {
	o := order.New(id)
	o.CustomerID = customerID
	o.Status = status
	o.Items = items(2)
	o.TotalCents, _ = order.Total(o.Items)
	o.CreatedAt = ms(created)
	o.UpdatedAt = o.CreatedAt.Add(time.Duration(version) * time.Second)
	if status == order.StatusShipped || status == order.StatusDelivered {
		o.TrackingNumber, o.Carrier = "TRK-"+id[:8], "DHL"
	}
	if status == order.StatusDelivered {
		o.DeliverySignature = "A. Lovelace"
	}
	if status == order.StatusCancelled {
		o.CancelReason = "changed my mind"
	}
	o.SetVersion(version)
	return readmodel.Order{State: o, CustomerEmail: "ada@example.com", CustomerName: "Ada Lovelace", CustomerVersion: 3}
}

// saveRow writes a read-model row through pkg/readmodel, as the projector does.
func saveRow(t testing.TB, e *sharedEnv, prev *readmodel.Order, next readmodel.Order) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.orders.Save(ctx, prev, next); err != nil {
		t.Fatalf("save read-model row: %v", err)
	}
}

// withVersion returns a copy of r at another version and status.
func withVersion(r readmodel.Order, status order.Status, version int64) readmodel.Order {
	o := *r.State
	o.Status = status
	o.UpdatedAt = o.CreatedAt.Add(time.Duration(version) * time.Second)
	o.SetVersion(version)
	r.State = &o
	return r
}

// step is one command decided at a time.
type step struct {
	cmd order.Command
	at  time.Time
}

// appendOrder decides the steps on a fresh order with the given id and appends each step's events
// to the event store (one append per step, as the command service does), with causality
// metadata. It returns every envelope appended, in sequence order.
func appendOrder(t testing.TB, store es.EventStore, id string, steps ...step) []es.Envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	o := order.New(id)
	var all []es.Envelope
	for i, s := range steps {
		events, err := o.Decide(s.cmd, s.at)
		if err != nil {
			t.Fatalf("decide step %d (%T): %v", i, s.cmd, err)
		}
		meta := es.Metadata{CausationID: ids.New(), CorrelationID: "corr-" + id[:8], UserID: "user-1",
			Extra: map[string]string{"command": fmt.Sprintf("%T", s.cmd)}}
		envs := es.NewEnvelopes(o, events, meta, ms(s.at), ids.New)
		if _, err := store.Append(ctx, es.AppendRequest{AggregateID: id, AggregateType: order.AggregateType,
			ExpectedVersion: o.Version(), Events: envs}); err != nil {
			t.Fatalf("append step %d: %v", i, err)
		}
		if err := es.Replay(o, envs); err != nil {
			t.Fatal(err)
		}
		all = append(all, envs...)
	}
	return all
}

// lifecycle returns the steps of an order created, updated, confirmed, shipped and delivered,
// one second apart from t0.
func lifecycle(id, customerID string, t0 time.Time) []step {
	at := func(i int) time.Time { return ms(t0).Add(time.Duration(i) * time.Second) }
	return []step{
		{order.Create{Customer: order.CustomerActive, OrderID: id, CustomerID: customerID, Items: items(2)}, at(0)},
		{order.UpdateItems{Items: items(3), Reason: "one more"}, at(1)},
		{order.Confirm{}, at(2)},
		{order.Ship{TrackingNumber: "TRK-1", Carrier: "DHL"}, at(3)},
		{order.Deliver{Signature: "A. Lovelace"}, at(4)},
	}
}

// registerCustomer appends a customer's registration to the event store.
func registerCustomer(t testing.TB, store es.EventStore, id string) {
	t.Helper()
	c := customer.New(id)
	events, err := c.Decide(customer.Register{CustomerID: id, Email: "ada@example.com", FirstName: "Ada", LastName: "Lovelace"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	envs := es.NewEnvelopes(c, events, es.Metadata{CausationID: ids.New(), CorrelationID: ids.New()}, ms(time.Now()), ids.New)
	if _, err := store.Append(ctxT(t), es.AppendRequest{AggregateID: id, AggregateType: customer.AggregateType, Events: envs}); err != nil {
		t.Fatal(err)
	}
}

// counter returns the value of a counter (or the sample count of a histogram) with the labels.
func counter(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		total := 0.0
		for _, m := range mf.GetMetric() {
			if !labelsMatch(m, labels) {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				total += m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				total += float64(m.GetHistogram().GetSampleCount())
			}
		}
		return total
	}
	return 0
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
