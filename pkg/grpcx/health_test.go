package grpcx_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ordersys/ordersys/pkg/grpcx"
)

// TestWatchHealth checks that the watch follows the probe on every named service, and that a
// shut-down health server stays NOT_SERVING however the probe answers.
func TestWatchHealth(t *testing.T) {
	services := []string{"", "a.v1.A", "b.v1.B"}
	hs := health.NewServer()
	for _, name := range services {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	var down atomic.Bool
	probe := func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			return errors.New("probe context has no deadline")
		}
		if down.Load() {
			return errors.New("dependency down")
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		grpcx.WatchHealth(ctx, hs, grpcx.HealthWatch{Services: services, Probes: []grpcx.Probe{{Name: "store", Check: probe}},
			Interval: 5 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	}()
	defer func() { cancel(); <-done }()

	await := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for _, name := range services {
			for {
				resp, err := hs.Check(context.Background(), &healthpb.HealthCheckRequest{Service: name})
				if err == nil && resp.GetStatus() == want {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("service %q: status %v (err %v), want %v", name, resp.GetStatus(), err, want)
				}
				time.Sleep(time.Millisecond)
			}
		}
	}

	down.Store(true)
	await(healthpb.HealthCheckResponse_NOT_SERVING)
	down.Store(false)
	await(healthpb.HealthCheckResponse_SERVING)

	hs.Shutdown()
	await(healthpb.HealthCheckResponse_NOT_SERVING)
	time.Sleep(50 * time.Millisecond) // ten probes that succeed
	await(healthpb.HealthCheckResponse_NOT_SERVING)

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("WatchHealth did not return after its context ended")
	}
}
