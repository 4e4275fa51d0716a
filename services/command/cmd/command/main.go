// Command command runs the ordersys command service: the write side, serving
// orders.v1.OrderCommandService and orders.v1.CustomerCommandService over gRPC (with health and
// reflection) and Prometheus metrics over HTTP, appending events to the CQL event store.
//
// Configuration comes from ORDERSYS_* environment variables (docs/configuration.md). With bearer
// tokens on (ORDERSYS_AUTH_JWKS_FILE) an event's user is the token's subject; with them off (a
// developer machine) it is the caller's x-user-id request metadata, which nothing checks: run
// it that way only behind a gateway that authenticates callers and sets that key
// (docs/security.md).
package main

import (
	"github.com/ordersys/ordersys/pkg/bootstrap"
	"github.com/ordersys/ordersys/services/command/internal/server"
)

// usage is what --help prints above the configuration.
const usage = "usage: command\n\nThe gRPC command service (orders.v1.OrderCommandService, CustomerCommandService)."

func main() {
	defaults := server.Defaults()
	bootstrap.Main(server.ServiceName, usage, &defaults, bootstrap.ServeFunc(server.ServiceName, server.Defaults, server.Run))
}
