package grpcapi

import (
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// ServiceNames are the gRPC services whose health the health watch reports, with "" (the
// server as a whole): every query reads Cassandra.
var ServiceNames = []string{"", ordersv1.OrderQueryService_ServiceDesc.ServiceName, ordersv1.CustomerQueryService_ServiceDesc.ServiceName}
