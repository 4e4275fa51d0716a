// Package grpcapi is the query service's gRPC edge: orders.v1.OrderQueryService and
// orders.v1.CustomerQueryService answered by package app, domain state rendered as orders.v1
// messages with pkg/codec.
//
// Handlers return the use-case layer's errors unchanged; the pkg/grpcx error interceptor maps
// them to status codes, once (INVALID_ARGUMENT with field violations, NOT_FOUND,
// FAILED_PRECONDITION, DEADLINE_EXCEEDED, UNAVAILABLE, INTERNAL). ServiceNames are the services
// whose health status the health watch keeps in step with the database.
package grpcapi
