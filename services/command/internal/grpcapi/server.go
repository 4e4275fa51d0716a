package grpcapi

import (
	"google.golang.org/grpc"

	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/ordersys/ordersys/services/command/internal/app"
)

// NewServer assembles the command service's gRPC server: the pkg/grpcx server (otelgrpc
// spans, metrics, logging, error mapping, panic recovery, health, reflection) with
// MetadataInterceptor first among opts.UnaryInterceptors, and both command services
// registered. keys deletes customers' data keys for EraseCustomer.
func NewServer(orders *app.OrderHandler, customers *app.CustomerHandler, keys Eraser, opts grpcx.ServerOptions) *grpcx.Server {
	opts.UnaryInterceptors = append([]grpc.UnaryServerInterceptor{MetadataInterceptor()}, opts.UnaryInterceptors...)
	srv := grpcx.NewServer(opts)
	ordersv1.RegisterOrderCommandServiceServer(srv, NewOrderServer(orders))
	ordersv1.RegisterCustomerCommandServiceServer(srv, NewCustomerServer(customers, keys))
	return srv
}
