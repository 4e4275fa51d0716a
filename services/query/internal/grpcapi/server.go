package grpcapi

import (
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/ordersys/ordersys/services/query/internal/app"
)

// NewServer assembles the query service's gRPC server: the pkg/grpcx server (otelgrpc spans,
// request metrics, logging, error mapping, panic recovery, health, reflection) with both query
// services registered on svc.
func NewServer(svc *app.Service, opts grpcx.ServerOptions) *grpcx.Server {
	srv := grpcx.NewServer(opts)
	ordersv1.RegisterOrderQueryServiceServer(srv, NewOrderServer(svc))
	ordersv1.RegisterCustomerQueryServiceServer(srv, NewCustomerServer(svc))
	return srv
}
