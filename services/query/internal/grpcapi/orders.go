package grpcapi

import (
	"context"
	"fmt"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/services/query/internal/app"
)

// OrderServer implements orders.v1.OrderQueryService on the use-case layer.
type OrderServer struct {
	ordersv1.UnimplementedOrderQueryServiceServer
	svc *app.Service
}

var _ ordersv1.OrderQueryServiceServer = (*OrderServer)(nil)

// NewOrderServer returns the gRPC order query service answering through svc.
func NewOrderServer(svc *app.Service) *OrderServer { return &OrderServer{svc: svc} }

// GetOrder returns the order's read model, waiting for min_version when it is set.
func (s *OrderServer) GetOrder(ctx context.Context, req *ordersv1.GetOrderRequest) (*ordersv1.GetOrderResponse, error) {
	o, err := s.svc.GetOrder(ctx, req.GetOrderId(), req.MinVersion)
	if err != nil {
		return nil, err
	}
	return &ordersv1.GetOrderResponse{Order: OrderToProto(o)}, nil
}

// ListOrdersByCustomer returns one page of the customer's orders, newest first.
func (s *OrderServer) ListOrdersByCustomer(ctx context.Context, req *ordersv1.ListOrdersByCustomerRequest) (*ordersv1.ListOrdersByCustomerResponse, error) {
	page, err := s.svc.ListOrdersByCustomer(ctx, req.GetCustomerId(), req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	return &ordersv1.ListOrdersByCustomerResponse{Orders: ordersToProto(page.Orders), NextPageToken: page.NextPageToken}, nil
}

// ListOrdersByStatus returns one page of the orders in the status, newest first.
func (s *OrderServer) ListOrdersByStatus(ctx context.Context, req *ordersv1.ListOrdersByStatusRequest) (*ordersv1.ListOrdersByStatusResponse, error) {
	status, err := codec.OrderStatusFromProto(req.GetStatus())
	if err != nil {
		status = order.Status(-1) // unknown number: the use case reports it as a bad field
	}
	page, err := s.svc.ListOrdersByStatus(ctx, status, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	return &ordersv1.ListOrdersByStatusResponse{Orders: ordersToProto(page.Orders), NextPageToken: page.NextPageToken}, nil
}

// GetOrderHistory returns a page of the order's events, payloads rendered as JSON.
func (s *OrderServer) GetOrderHistory(ctx context.Context, req *ordersv1.GetOrderHistoryRequest) (*ordersv1.GetOrderHistoryResponse, error) {
	envs, next, err := s.svc.GetOrderHistory(ctx, req.GetOrderId(), int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	out, err := historyEvents(envs)
	if err != nil {
		return nil, err
	}
	return &ordersv1.GetOrderHistoryResponse{Events: out, NextPageToken: next}, nil
}

// historyEvents renders decoded events for GetOrderHistory and GetCustomerHistory.
func historyEvents(envs []es.Envelope) ([]*ordersv1.HistoryEvent, error) {
	out := make([]*ordersv1.HistoryEvent, len(envs))
	for i, env := range envs {
		var err error
		if out[i], err = codec.HistoryEvent(env); err != nil {
			return nil, fmt.Errorf("render history of %s %s: %w", env.AggregateType, env.AggregateID, err)
		}
	}
	return out, nil
}

// GetOrderAt rebuilds the order at a version or a time from the event store.
func (s *OrderServer) GetOrderAt(ctx context.Context, req *ordersv1.GetOrderAtRequest) (*ordersv1.GetOrderAtResponse, error) {
	var (
		o   *order.Order
		err error
	)
	switch p := req.GetPoint().(type) {
	case *ordersv1.GetOrderAtRequest_Version:
		o, err = s.svc.GetOrderAtVersion(ctx, req.GetOrderId(), p.Version)
	case *ordersv1.GetOrderAtRequest_At:
		if p.At == nil || p.At.CheckValid() != nil {
			return nil, es.Invalid("at", "must be a valid timestamp")
		}
		o, err = s.svc.GetOrderAtTime(ctx, req.GetOrderId(), p.At.AsTime())
	default:
		return nil, es.Invalid("point", "set either version or at")
	}
	if err != nil {
		return nil, err
	}
	return &ordersv1.GetOrderAtResponse{Order: codec.OrderToProto(o)}, nil
}

// OrderToProto renders a read-model row as orders.v1.Order, customer details included.
func OrderToProto(o readmodel.Order) *ordersv1.Order {
	m := codec.OrderToProto(o.State)
	m.CustomerEmail = o.CustomerEmail
	m.CustomerName = o.CustomerName
	return m
}

func ordersToProto(rows []readmodel.Order) []*ordersv1.Order {
	out := make([]*ordersv1.Order, len(rows))
	for i, o := range rows {
		out[i] = OrderToProto(o)
	}
	return out
}
