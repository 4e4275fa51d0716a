// Package query is the root of the ordersys query service module: the read side of the
// system, serving orders.v1.OrderQueryService and orders.v1.CustomerQueryService.
//
//   - cmd/query: the service binary (configuration, logging and tracing, then server.Run);
//   - internal/server: the composition root (Config, Run) and the health probe;
//   - internal/app: the use-case layer (read-your-writes waits, list paging, history and
//     point-in-time rebuilds from the event store);
//   - internal/grpcapi: the gRPC edge (requests → use cases, domain state → orders.v1 messages).
//
// GetOrder, the List RPCs and GetCustomer read the read models that the projector builds
// (pkg/readmodel, eventually consistent); GetOrderHistory and GetOrderAt read the event store
// itself (pkg/cql), so they are always current.
//
// The package itself holds the component tests, which run the real gRPC server against the real
// Cassandra (`go test -short` skips them).
package query
