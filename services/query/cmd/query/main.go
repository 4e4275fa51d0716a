// Command query runs the ordersys query service: the read side, serving
// orders.v1.OrderQueryService and orders.v1.CustomerQueryService over gRPC (with health and
// reflection) and Prometheus metrics over HTTP. It reads the read models the projector builds
// and, for GetOrderHistory and GetOrderAt, the CQL event store.
//
// Configuration comes from ORDERSYS_* environment variables (docs/configuration.md), plus
// ORDERSYS_QUERY_MAX_WAIT (see services/query/README.md).
package main

import (
	"github.com/ordersys/ordersys/pkg/bootstrap"
	"github.com/ordersys/ordersys/services/query/internal/server"
)

// usage is what --help prints above the configuration.
const usage = "usage: query\n\nThe gRPC query service (orders.v1.OrderQueryService, CustomerQueryService)."

func main() {
	defaults := server.Defaults()
	bootstrap.Main(server.ServiceName, usage, &defaults, bootstrap.ServeFunc(server.ServiceName, server.Defaults, server.Run))
}
