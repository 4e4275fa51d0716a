package grpcapi

import (
	"context"

	"github.com/ordersys/ordersys/pkg/codec"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/services/query/internal/app"
)

// CustomerServer implements orders.v1.CustomerQueryService on the use-case layer.
type CustomerServer struct {
	ordersv1.UnimplementedCustomerQueryServiceServer
	svc *app.Service
}

var _ ordersv1.CustomerQueryServiceServer = (*CustomerServer)(nil)

// NewCustomerServer returns the gRPC customer query service answering through svc.
func NewCustomerServer(svc *app.Service) *CustomerServer { return &CustomerServer{svc: svc} }

// GetCustomer returns the customer's read model.
func (s *CustomerServer) GetCustomer(ctx context.Context, req *ordersv1.GetCustomerRequest) (*ordersv1.GetCustomerResponse, error) {
	c, err := s.svc.GetCustomer(ctx, req.GetCustomerId())
	if err != nil {
		return nil, err
	}
	return &ordersv1.GetCustomerResponse{Customer: codec.CustomerToProto(c)}, nil
}
