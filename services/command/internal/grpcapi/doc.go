// Package grpcapi is the command service's gRPC edge: orders.v1.OrderCommandService and
// orders.v1.CustomerCommandService translated to domain commands executed by package app.
//
// The edge checks what the domain does not see (the aggregate id of non-creating commands, the
// command id, the expected version), computes the command fingerprint (Fingerprint), reads the
// caller's correlation and user ids from the request metadata (MetadataInterceptor) and renames
// domain field paths to request field paths where they differ. It returns domain errors: the
// pkg/grpcx error interceptor maps them to status codes, once.
package grpcapi
