// Package query is the root of the ordersys query service module: the read side of the
// system, serving orders.v1.OrderQueryService and orders.v1.CustomerQueryService.
//
//   - cmd/query: the service binary (wiring only);
//   - internal/app: the use-case layer (read-your-writes waits, list paging, history and
//     point-in-time rebuilds from the event store);
//   - internal/grpcapi: the gRPC edge (requests → use cases, domain state → orders.v1 messages,
//     health watching);
//   - internal/storage: the adapter of pkg/readmodel to the use-case layer's port (classifying
//     driver errors as es.ErrUnavailable) and the health probe.
//
// GetOrder, the List RPCs and GetCustomer read the read models that the projector builds
// (pkg/readmodel, eventually consistent); GetOrderHistory and GetOrderAt read the event store
// itself (pkg/cql), so they are always current.
//
// The package itself holds the component tests, which run the real gRPC server against the real
// Cassandra (`go test -short` skips them).
package query
