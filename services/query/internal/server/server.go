// Package server is the query service's composition root: its configuration and Run, which
// builds every dependency from it (metrics, the CQL session, the event store and read models,
// the use cases, the gRPC server and its health watch) and serves until the context ends. The
// binary's main calls Run; the component tests call its two halves, New and Serve, to reach
// the parts.
package server

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/ordersys/ordersys/pkg/bootstrap"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/services/query/internal/app"
	"github.com/ordersys/ordersys/services/query/internal/grpcapi"
)

// ServiceName names the service in logs, traces and metrics.
const ServiceName = "query"

// healthInterval is how often the database is probed for the health status.
const healthInterval = 5 * time.Second

// Run serves the query service until ctx ends, then stops gracefully (see Serve).
func Run(ctx context.Context, cfg Config, log *slog.Logger, lns bootstrap.Listeners) error {
	return bootstrap.Run(ctx, cfg, log, lns, New)
}

// Server is a query service built from its configuration, its gRPC listener bound. Its parts
// are exported for the component tests.
type Server struct {
	// Metrics is the registry /metrics serves.
	Metrics bootstrap.Metrics
	// GRPC is the gRPC server, Listener its listener.
	GRPC     *grpcx.Server
	Listener net.Listener

	log  *slog.Logger
	base bootstrap.Base
}

// New builds the query service on ctx (the metrics server and the health watch run until it
// ends): it fails when the database does not answer.
func New(ctx context.Context, cfg Config, log *slog.Logger, lns bootstrap.Listeners) (*Server, error) {
	// -------------------------------------------------------------------------------------
	// Metrics, the event store and the read models

	base, err := bootstrap.Open(ctx, ServiceName, cfg.Common, lns, log, bootstrap.ConnectOptions{What: "database"})
	if err != nil {
		return nil, err
	}
	s := &Server{Metrics: base.Metrics, log: log, base: base}
	if err := s.build(ctx, cfg, lns); err != nil {
		base.Close()
		return nil, err
	}
	return s, nil
}

// build makes the stores, the use cases and the gRPC server on the open session.
func (s *Server) build(ctx context.Context, cfg Config, lns bootstrap.Listeners) error {
	// History and state at a point decrypt customers' personal data through customer_keys.
	events, _, err := bootstrap.PersonalData(s.base.Session, cfg.PII, s.log)
	if err != nil {
		return err
	}
	store := cql.NewEventStore(s.base.Session, events, cql.Options{})
	readModels := readmodel.NewStore(s.base.Session, readmodel.Options{})
	probe := Probe(store, readModels)
	if err := bootstrap.CheckSchema(ctx, cfg.CQL.Keyspace, "database", probe); err != nil {
		return err
	}

	// -------------------------------------------------------------------------------------
	// Use cases

	svc := app.NewService(readModels, store, app.Options{
		MaxWait: cfg.MaxWait,
		Metrics: app.NewMetrics(s.Metrics.Registry),
		Logger:  s.log,
	})

	// -------------------------------------------------------------------------------------
	// gRPC server: SERVING from the start (the database answered above), NOT_SERVING while it
	// does not answer and from the start of the graceful stop.

	srv, ln, err := bootstrap.NewServer(ServiceName, cfg.Common, cfg.GRPC, s.Metrics, s.log, lns, func(opts grpcx.ServerOptions) *grpcx.Server {
		return grpcapi.NewServer(svc, opts)
	})
	if err != nil {
		return err
	}
	go grpcx.WatchHealth(ctx, srv.Health, grpcx.HealthWatch{Services: grpcapi.ServiceNames, Interval: lns.Interval(healthInterval), Logger: s.log,
		Probes: []grpcx.Probe{{Name: "database", Check: probe}}})
	s.GRPC, s.Listener = srv, ln
	return nil
}

// Serve serves until ctx ends, then stops gracefully (bounded by the shutdown timeout) and
// closes the session.
func (s *Server) Serve(ctx context.Context) error {
	defer s.base.Close()
	err := s.GRPC.ServeListener(ctx, s.Listener) // returns once stopped (ctx ended, drained) or failed
	s.log.Info("shut down")
	return err
}
