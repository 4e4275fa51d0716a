// Package command is the root of the ordersys command service module: the write side of the
// system, which turns orders.v1 command RPCs into events appended to the CQL event store.
//
//   - cmd/command: the service binary (wiring only);
//   - cmd/migrate: the schema migration job;
//   - internal/app: the use-case layer (load, de-duplicate, decide, append, retry, snapshot);
//   - internal/grpcapi: the gRPC edge (requests → domain commands, metadata, fingerprints);
//   - internal/storage: adapters of pkg/cql to the use-case layer's ports.
//
// The package itself holds the component tests and the benchmark, which run the real gRPC
// server against the real Cassandra (`go test -short` skips them).
package command
