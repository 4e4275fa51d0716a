package query_test

import (
	"context"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ordersys/ordersys/pkg/cql/cqlfault"
	"github.com/ordersys/ordersys/pkg/grpcx"
)

// livenessThreshold is how long the chart's liveness probe tolerates failures before Kubernetes
// restarts a pod (helm/ordersys/templates/deployment.yaml: periodSeconds 10 × failureThreshold 3).
const livenessThreshold = 30 * time.Second

// TestStaysLiveThroughAStoreOutage stops Cassandra from answering (a real TCP proxy in front of
// it holds every byte, as a stopped or partitioned node would) for longer than the chart's
// liveness threshold: all along the liveness service answers SERVING (the pod is not restarted)
// while readiness turns NOT_SERVING (the pod leaves the Service); once Cassandra answers again
// the server is ready again, on the same process and session.
func TestStaysLiveThroughAStoreOutage(t *testing.T) {
	e := env(t)
	proxy := cqlfault.Start(t)
	session := proxy.Session(t, e.keyspace, time.Second)
	srv := startServer(t, session)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	hc := healthpb.NewHealthClient(srv.conn)
	waitHealth(t, hc, "", healthpb.HealthCheckResponse_SERVING)

	proxy.AddToxic(t, `{"name":"outage-down","type":"timeout","stream":"downstream","attributes":{"timeout":0}}`)
	proxy.AddToxic(t, `{"name":"outage-up","type":"timeout","stream":"upstream","attributes":{"timeout":0}}`)
	outageEnd := time.Now().Add(livenessThreshold + 5*time.Second)
	notReady := false
	for time.Now().Before(outageEnd) {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second) // the probe's timeoutSeconds
		live, err := hc.Check(cctx, &healthpb.HealthCheckRequest{Service: grpcx.HealthServiceLiveness})
		ready, rerr := hc.Check(cctx, &healthpb.HealthCheckRequest{})
		ccancel()
		if err != nil || live.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("liveness during the outage: %v %v: Kubernetes would restart a healthy pod", live.GetStatus(), err)
		}
		notReady = notReady || (rerr == nil && ready.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING)
		time.Sleep(time.Second)
	}
	if !notReady {
		t.Fatal("readiness never turned NOT_SERVING while Cassandra did not answer")
	}

	proxy.RemoveToxic("outage-down")
	proxy.RemoveToxic("outage-up")
	deadline := time.Now().Add(time.Minute)
	for {
		res, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && res.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready a minute after Cassandra answered again: %v %v", res.GetStatus(), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
