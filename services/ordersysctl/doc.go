// Package ordersysctl is the module of ordersysctl, the operators' command line for a running
// ordersys: it calls the services' gRPC APIs (the relay's admin service, the query service) with
// the same TLS and token settings they enforce. See cmd/ordersysctl and docs/operations.md.
package ordersysctl
