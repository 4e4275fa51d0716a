// Package command is the root of the ordersys command service module: the write side of the
// system, which turns orders.v1 command RPCs into events appended to the CQL event store.
//
//   - cmd/command: the service binary (configuration, logging and tracing, then server.Run);
//   - cmd/migrate: the schema migration job;
//   - internal/server: the composition root (Config, Run);
//   - internal/app: the use-case layer (load, de-duplicate, decide, append, retry, snapshot),
//     whose ports pkg/cql implements;
//   - internal/grpcapi: the gRPC edge (requests → domain commands, metadata, fingerprints).
//
// The package itself holds the component tests and the benchmark, which run the real gRPC
// server against the real Cassandra (`go test -short` skips them).
package command
