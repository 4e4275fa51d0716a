package grpcapi

import (
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// ServiceNames are the gRPC services whose health the health watch reports, with "" (the
// server as a whole): a command service without its store cannot serve.
var ServiceNames = []string{"", ordersv1.OrderCommandService_ServiceDesc.ServiceName, ordersv1.CustomerCommandService_ServiceDesc.ServiceName}
