package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ordersys/ordersys/pkg/cql/cqlfault"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/grpcx"
)

// livenessThreshold is how long the chart's liveness probe tolerates failures before Kubernetes
// restarts a pod (helm/ordersys/templates/deployment.yaml: periodSeconds 10 × failureThreshold 3).
const livenessThreshold = 30 * time.Second

// probeTimeout is the probes' timeoutSeconds in the chart.
const probeTimeout = 2 * time.Second

// probeClient answers the HTTP probes within the probes' timeout.
var probeClient = &http.Client{Timeout: probeTimeout}

// httpProbe GETs path on name's metrics port and returns the status code and body.
func (s *system) httpProbe(name, path string) (int, string, error) {
	res, err := probeClient.Get("http://" + s.metricsAddr[name] + path)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, strings.TrimSpace(string(body)), err
}

// TestServicesStayLiveThroughAStoreOutage runs the four services as processes on a Cassandra
// reached through a TCP fault proxy (toxiproxy, pkg/cql/cqlfault), then makes it hold every
// byte both ways, as a stopped or partitioned node would, for longer than the chart's liveness
// threshold. All along every service stays live: the gRPC health service ordersys.liveness
// answers SERVING and /healthz 200 within the probes' timeout, and no process exits (Kubernetes
// would not restart a healthy pod); each one turns not ready (the server's health NOT_SERVING
// and /readyz 503: the pod leaves the Service). Once Cassandra answers again every service is
// ready again, no process having exited, and an order goes from the command service to the query
// service. (services/query/liveness_test.go does the same in process for the query service.)
func TestServicesStayLiveThroughAStoreOutage(t *testing.T) {
	base := getSystem(t)
	proxy := cqlfault.Start(t)
	s := &system{binDir: base.binDir, cql: []string{proxy.Listen}, cqlProxy: true}
	t.Cleanup(func() {
		if t.Failed() && s.procs != nil {
			s.dumpLogs(t, 40)
		}
		if unclean := s.stop(); len(unclean) > 0 {
			t.Errorf("outage system: not a clean stop on SIGTERM: %s", strings.Join(unclean, "; "))
		}
	})
	if err := s.start(); err != nil {
		t.Fatalf("start the system behind the proxy: %v\n%s", err, s.progress.String())
	}
	health := map[string]healthpb.HealthClient{}
	for _, name := range serviceNames {
		conn, err := s.dial(s.grpcAddr[name])
		if err != nil {
			t.Fatal(err)
		}
		health[name] = healthpb.NewHealthClient(conn)
	}
	check := func(name, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		defer cancel()
		res, err := health[name].Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		return res.GetStatus(), err
	}

	proxy.AddToxic(t, `{"name":"outage-down","type":"timeout","stream":"downstream","attributes":{"timeout":0}}`)
	proxy.AddToxic(t, `{"name":"outage-up","type":"timeout","stream":"upstream","attributes":{"timeout":0}}`)
	started := time.Now()
	notReady := map[string]map[string]bool{} // service → "grpc", "readyz" seen not ready
	for _, name := range serviceNames {
		notReady[name] = map[string]bool{}
	}
	for time.Since(started) < livenessThreshold+5*time.Second {
		for _, name := range serviceNames {
			if p := s.procs[name]; !p.running() {
				t.Fatalf("%s exited during the outage (%v): Kubernetes would restart it; last lines:\n%s", name, p.err, tail(p.log, 30))
			}
			if st, err := check(name, grpcx.HealthServiceLiveness); err != nil || st != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("%s liveness %s into the outage: %v %v: Kubernetes would restart a healthy pod", name, time.Since(started).Round(time.Second), st, err)
			}
			if code, body, err := s.httpProbe(name, "/healthz"); err != nil || code != http.StatusOK || body != "ok" {
				t.Fatalf("%s /healthz %s into the outage: %d %q %v: Kubernetes would restart a healthy pod", name, time.Since(started).Round(time.Second), code, body, err)
			}
			if st, err := check(name, ""); err == nil && st == healthpb.HealthCheckResponse_NOT_SERVING {
				notReady[name]["grpc"] = true
			}
			if code, _, err := s.httpProbe(name, "/readyz"); err == nil && code == http.StatusServiceUnavailable {
				notReady[name]["readyz"] = true
			}
		}
		time.Sleep(time.Second)
	}
	for _, name := range serviceNames {
		if !notReady[name]["grpc"] || !notReady[name]["readyz"] {
			t.Errorf("%s never reported not ready while Cassandra did not answer for %s (seen: %v; want the server's health NOT_SERVING and /readyz 503)",
				name, livenessThreshold+5*time.Second, notReady[name])
		}
	}
	t.Logf("%s of outage: every service stayed live and reported not ready", time.Since(started).Round(time.Second))

	proxy.RemoveToxic("outage-down")
	proxy.RemoveToxic("outage-up")
	recovered := time.Now()
	for _, name := range serviceNames {
		err := eventually(2*time.Minute, 500*time.Millisecond, func() error {
			st, err := check(name, "")
			code, body, herr := s.httpProbe(name, "/readyz")
			if err != nil || st != healthpb.HealthCheckResponse_SERVING || herr != nil || code != http.StatusOK {
				return fmt.Errorf("health %v %v, /readyz %d %q %v", st, err, code, body, herr)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s not ready again 2 minutes after Cassandra answered again: %v", name, err)
		}
	}
	t.Logf("ready again %s after the outage ended", time.Since(recovered).Round(100*time.Millisecond))
	s.checkAlive(t)

	// The pipeline works again end to end.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	customer, order := ids.New(), ids.New()
	if _, err := s.customers.RegisterCustomer(ctx, &ordersv1.RegisterCustomerRequest{CustomerId: customer,
		Email: "outage-" + customer[:8] + "@example.com", FirstName: "Out", LastName: "Age"}); err != nil {
		t.Fatalf("RegisterCustomer after the outage: %v", err)
	}
	if _, err := s.orders.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: order, CustomerId: customer, Items: items(3)}); err != nil {
		t.Fatalf("CreateOrder after the outage: %v", err)
	}
	err := eventually(time.Minute, time.Second, func() error {
		_, err := s.query.GetOrder(ctx, &ordersv1.GetOrderRequest{OrderId: order, MinVersion: ptr(int64(1))})
		return err
	})
	if err != nil {
		t.Fatalf("the order created after the outage never reached the query service: %v", err)
	}
}
