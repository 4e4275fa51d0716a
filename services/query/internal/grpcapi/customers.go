package grpcapi

import (
	"context"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/es"
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

// GetCustomerHistory returns a page of the customer's events, payloads rendered as JSON.
func (s *CustomerServer) GetCustomerHistory(ctx context.Context, req *ordersv1.GetCustomerHistoryRequest) (*ordersv1.GetCustomerHistoryResponse, error) {
	envs, next, err := s.svc.GetCustomerHistory(ctx, req.GetCustomerId(), int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	out, err := historyEvents(envs)
	if err != nil {
		return nil, err
	}
	return &ordersv1.GetCustomerHistoryResponse{Events: out, NextPageToken: next}, nil
}

// GetCustomerAt rebuilds the customer at a version or a time from the event store.
func (s *CustomerServer) GetCustomerAt(ctx context.Context, req *ordersv1.GetCustomerAtRequest) (*ordersv1.GetCustomerAtResponse, error) {
	var (
		c   *customer.Customer
		err error
	)
	switch p := req.GetPoint().(type) {
	case *ordersv1.GetCustomerAtRequest_Version:
		c, err = s.svc.GetCustomerAtVersion(ctx, req.GetCustomerId(), p.Version)
	case *ordersv1.GetCustomerAtRequest_At:
		if p.At == nil || p.At.CheckValid() != nil {
			return nil, es.Invalid("at", "must be a valid timestamp")
		}
		c, err = s.svc.GetCustomerAtTime(ctx, req.GetCustomerId(), p.At.AsTime())
	default:
		return nil, es.Invalid("point", "set either version or at")
	}
	if err != nil {
		return nil, err
	}
	return &ordersv1.GetCustomerAtResponse{Customer: codec.CustomerToProto(c)}, nil
}
