// Package server is the cdc-relay's composition root: Run builds every dependency from the
// configuration (metrics, the CQL session, the Kafka publisher, the gRPC server with the admin
// service and the health watch, the relay instance of internal/app) and publishes until the
// context ends. The binary's main and the relay's tests call the same Run.
package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/ordersys/ordersys/pkg/bootstrap"
	"github.com/ordersys/ordersys/pkg/cql"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/grpcx"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/app"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/relay"
)

// ServiceName names the relay in logs, traces and metrics.
const ServiceName = "cdc-relay"

// Run runs the relay until ctx ends: metrics, the gRPC server (health, reflection and the
// admin service), the health watch of the store and the broker, and the leadership loop in
// which the lease holder publishes. It returns after a graceful stop (in-flight publishes are
// abandoned unacknowledged and published again by the next leader).
func Run(ctx context.Context, cfg app.Config, log *slog.Logger, lns bootstrap.Listeners) error {
	// -------------------------------------------------------------------------------------
	// Metrics and the CQL session (after the Kafka settings are known to be usable: a bad one
	// fails at once), retried while the store does not answer

	cluster, err := okafka.ClusterFrom(cfg.Kafka)
	if err != nil {
		return err
	}
	base, err := bootstrap.Open(ctx, ServiceName, cfg.Common, lns, log, bootstrap.ConnectOptions{What: "store", Retry: true, Log: log})
	if err != nil {
		return err
	}
	defer base.Close()
	metrics, session := base.Metrics, base.Session
	relayMetrics := relay.NewMetrics(metrics.Registry)

	// -------------------------------------------------------------------------------------
	// Kafka publisher

	pub := okafka.NewPublisher(okafka.PublisherConfig{
		Cluster: cluster, BatchTimeout: cfg.BatchTimeout, WriteTimeout: cfg.WriteTimeout,
		MaxMessageBytes: cfg.MaxMessageBytes, Logger: log,
	})
	defer pub.Close()

	// -------------------------------------------------------------------------------------
	// gRPC server: health (NOT_SERVING while the store or the broker does not answer),
	// reflection and the admin service (status, dead letters).

	srv, ln, err := bootstrap.NewServer(ServiceName, cfg.Common, cfg.GRPC, metrics, log, lns, grpcx.NewServer)
	if err != nil {
		return err
	}
	r := app.NewRelay(cfg, session, pub, relayMetrics, grpcx.NewDecodeWatch(metrics.Registry, "ordersys_relay", srv.Health, log, relay.DecodeReasons...), log)
	ordersv1.RegisterRelayAdminServiceServer(srv, r.AdminServer(metrics.Registry))
	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	wg.Go(func() { serveErr <- srv.ServeListener(ctx, ln) })
	wg.Go(func() {
		grpcx.WatchHealth(ctx, srv.Health, grpcx.HealthWatch{Services: []string{""}, Interval: lns.Interval(cfg.HealthInterval), Logger: log,
			Probes: []grpcx.Probe{
				{Name: "cql", Check: func(ctx context.Context) error { return cql.Ping(ctx, session) }},
				{Name: "kafka", Check: pub.Ping},
			},
			Observe: func(probe string, err error) { relayMetrics.DependencyUp.WithLabelValues(probe).Set(up(err)) },
		})
	})

	// -------------------------------------------------------------------------------------
	// Leadership: the lease holder publishes; the others wait to take over.

	runErr := r.Run(ctx)
	log.Info("shutting down")
	wg.Wait()
	return errors.Join(runErr, <-serveErr)
}

// up is the value of a dependency-up gauge after a probe that returned err.
func up(err error) float64 {
	if err != nil {
		return 0
	}
	return 1
}
