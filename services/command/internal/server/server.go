// Package server is the command service's composition root: its configuration and Run, which
// builds every dependency from it (metrics, the CQL session, the cluster clock, the event store
// with its outbox and rejections, the use cases, the gRPC server and its health watch) and
// serves until the context ends. The binary's main calls Run; the component tests call its two
// halves, New and Serve, to reach the parts.
package server

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/ordersys/ordersys/pkg/bootstrap"
	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/ordersys/ordersys/pkg/pii"
	"github.com/ordersys/ordersys/services/command/internal/app"
	"github.com/ordersys/ordersys/services/command/internal/grpcapi"
)

// ServiceName names the service in logs, traces and metrics.
const ServiceName = "command"

// healthInterval is how often the event store is probed for the health status.
const healthInterval = 5 * time.Second

// Run serves the command service until ctx ends, then stops gracefully (see Serve).
func Run(ctx context.Context, cfg Config, log *slog.Logger, lns bootstrap.Listeners) error {
	return bootstrap.Run(ctx, cfg, log, lns, New)
}

// Server is a command service built from its configuration, its gRPC listener bound. Its parts
// are exported for the component tests.
type Server struct {
	// Service, Orders and Customers are the use cases.
	Service   *app.Service
	Orders    *app.OrderHandler
	Customers *app.CustomerHandler
	// Store is the event store, Keys the key store of customers' personal data.
	Store *cql.EventStore
	Keys  *pii.Store
	// Metrics is the registry /metrics serves.
	Metrics bootstrap.Metrics
	// GRPC is the gRPC server, Listener its listener.
	GRPC     *grpcx.Server
	Listener net.Listener

	cfg  Config
	log  *slog.Logger
	base bootstrap.Base
}

// New builds the command service on ctx (the metrics server, the cluster clock's sync and the
// health watch run until it ends): it fails when the event store does not answer.
func New(ctx context.Context, cfg Config, log *slog.Logger, lns bootstrap.Listeners) (*Server, error) {
	// -------------------------------------------------------------------------------------
	// Metrics and the event store

	base, err := bootstrap.Open(ctx, ServiceName, cfg.Common, lns, log, bootstrap.ConnectOptions{What: "event store"})
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, base: base, Metrics: base.Metrics}
	if err := s.build(ctx, lns); err != nil {
		base.Close()
		return nil, err
	}
	return s, nil
}

// build makes the store, the use cases and the gRPC server on the open session.
func (s *Server) build(ctx context.Context, lns bootstrap.Listeners) error {
	cfg, log, session := s.cfg, s.log, s.base.Session
	// The cluster's clock decides where outbox rows go (the relay reads them by the same clock).
	clock := cql.NewClusterClock(session, nil)
	// Personal data of customers: sealed with each customer's data key when a KEK is configured.
	events, keys, err := bootstrap.PersonalData(session, cfg.PII, log)
	if err != nil {
		return err
	}
	if kek := keys.KEK(); kek != nil && kek.Keys() > 1 {
		// A KEK rotation is under way (docs/privacy.md): re-wrap the data keys that an older KEK
		// key wrapped with the new primary, in the background (every replica may; rows change
		// only if still as read).
		go func() {
			n, err := keys.Rewrap(ctx)
			log.Info("personal data: data keys re-wrapped with the primary KEK key", "rewrapped", n, "primary_key_id", kek.PrimaryKeyID(), "err", err)
		}()
	}
	var customerSnapshots es.SnapshotCodec = codec.CustomerSnapshotCodec{}
	if keys.Enabled() {
		customerSnapshots = codec.SealedCustomerSnapshots{Keys: keys}
	}
	store := cql.NewEventStore(session, events, cql.Options{
		CommandTTL: cfg.DedupTTL,
		Topics:     map[string]string{"Order": cfg.OrderTopic, "Customer": cfg.CustomerTopic},
		Now:        clock.Now,
	})
	probe := func(ctx context.Context) error {
		_, err := store.Head(ctx, ids.Probe)
		return err
	}
	if err := bootstrap.CheckSchema(ctx, cfg.CQL.Keyspace, "event store", probe); err != nil {
		return err
	}
	if err := clock.Sync(ctx); err != nil {
		log.Warn("cluster clock: not synced yet, using the local clock", "err", err)
	} else {
		log.Info("cluster clock synced", "offset", clock.Offset())
	}
	go clock.Run(ctx, cql.ClusterClockSyncInterval)

	// -------------------------------------------------------------------------------------
	// Use cases

	svc := app.NewService(store, app.Options{
		SnapshotEvery:         cfg.SnapshotEvery,
		MaxRetries:            cfg.MaxRetries,
		MaxRememberedCommands: cfg.DedupMaxCommands,
		Rejections:            cql.NewRejections(session, cfg.DedupTTL),
		Metrics:               app.NewMetrics(s.Metrics.Registry),
		Logger:                log,
	})
	customers := app.NewCustomerHandler(svc, customerSnapshots)
	orders := app.NewOrderHandler(svc, codec.OrderSnapshotCodec{}, customers)

	// -------------------------------------------------------------------------------------
	// gRPC server: SERVING from the start (the store answered above), NOT_SERVING while the
	// store does not answer and from the start of the graceful stop.

	srv, ln, err := bootstrap.NewServer(ServiceName, cfg.Common, cfg.GRPC, s.Metrics, log, lns, func(opts grpcx.ServerOptions) *grpcx.Server {
		opts.ServiceName = "" // log already names the service
		return grpcapi.NewServer(orders, customers, keys, opts)
	})
	if err != nil {
		return err
	}
	go grpcx.WatchHealth(ctx, srv.Health, grpcx.HealthWatch{Services: grpcapi.ServiceNames, Interval: lns.Interval(healthInterval), Logger: log,
		Probes: []grpcx.Probe{{Name: "event store", Check: probe}}})
	s.Service, s.Orders, s.Customers, s.Store, s.Keys, s.GRPC, s.Listener = svc, orders, customers, store, keys, srv, ln
	return nil
}

// Serve serves until ctx ends, then stops gracefully: the gRPC server drains, the background
// snapshots and the outbox rows of the last appends are given the shutdown timeout to finish
// (what does not, recovery finishes from the intents), and the session is closed.
func (s *Server) Serve(ctx context.Context) error {
	defer s.base.Close()
	serveErr := s.GRPC.ServeListener(ctx, s.Listener) // returns once stopped (ctx ended) or failed
	s.log.Info("shutting down")

	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.Service.Wait(wctx); err != nil {
		s.log.Warn("shutdown", "err", err)
	}
	if err := s.Store.Close(wctx); err != nil {
		s.log.Warn("shutdown: appends left to recovery", "err", err)
	}
	return serveErr
}
