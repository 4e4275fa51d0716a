package grpcapi

import (
	"context"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/services/command/internal/app"
)

// orderRenames maps the order domain's field paths to request fields where they differ: the
// cancelling user comes from the x-user-id metadata.
var orderRenames = map[string]string{"cancelled_by": MetadataUserID}

// OrderServer implements orders.v1.OrderCommandService on the order handler.
type OrderServer struct {
	ordersv1.UnimplementedOrderCommandServiceServer
	h *app.OrderHandler
}

var _ ordersv1.OrderCommandServiceServer = (*OrderServer)(nil)

// NewOrderServer returns the gRPC order command service executing through h.
func NewOrderServer(h *app.OrderHandler) *OrderServer { return &OrderServer{h: h} }

func (s *OrderServer) run(ctx context.Context, method, id string, req commandRequest, cmd order.Command) (app.Result, error) {
	return execute(ctx, s.h, call[order.Command]{
		method: method, idField: "order_id", id: id, req: req, cmd: cmd, renames: orderRenames,
	})
}

// CreateOrder places a new order.
func (s *OrderServer) CreateOrder(ctx context.Context, req *ordersv1.CreateOrderRequest) (*ordersv1.CreateOrderResponse, error) {
	id := ids.Canonical(req.GetOrderId())
	res, err := s.run(ctx, ordersv1.OrderCommandService_CreateOrder_FullMethodName, id, req, order.Create{
		OrderID: id, CustomerID: ids.Canonical(req.GetCustomerId()), Items: codec.ItemsFromProto(req.GetItems()),
	})
	if err != nil {
		return nil, err
	}
	return &ordersv1.CreateOrderResponse{AggregateId: res.AggregateID, Version: res.Version, EventIds: res.EventIDs}, nil
}

// UpdateOrderItems replaces the items of a CREATED order.
func (s *OrderServer) UpdateOrderItems(ctx context.Context, req *ordersv1.UpdateOrderItemsRequest) (*ordersv1.UpdateOrderItemsResponse, error) {
	res, err := s.run(ctx, ordersv1.OrderCommandService_UpdateOrderItems_FullMethodName, ids.Canonical(req.GetOrderId()), req, order.UpdateItems{
		Items: codec.ItemsFromProto(req.GetItems()), Reason: req.GetReason(),
	})
	if err != nil {
		return nil, err
	}
	return &ordersv1.UpdateOrderItemsResponse{AggregateId: res.AggregateID, Version: res.Version, EventIds: res.EventIDs}, nil
}

// ConfirmOrder confirms a CREATED order.
func (s *OrderServer) ConfirmOrder(ctx context.Context, req *ordersv1.ConfirmOrderRequest) (*ordersv1.ConfirmOrderResponse, error) {
	res, err := s.run(ctx, ordersv1.OrderCommandService_ConfirmOrder_FullMethodName, ids.Canonical(req.GetOrderId()), req, order.Confirm{})
	if err != nil {
		return nil, err
	}
	return &ordersv1.ConfirmOrderResponse{AggregateId: res.AggregateID, Version: res.Version, EventIds: res.EventIDs}, nil
}

// ShipOrder ships a CONFIRMED order.
func (s *OrderServer) ShipOrder(ctx context.Context, req *ordersv1.ShipOrderRequest) (*ordersv1.ShipOrderResponse, error) {
	res, err := s.run(ctx, ordersv1.OrderCommandService_ShipOrder_FullMethodName, ids.Canonical(req.GetOrderId()), req, order.Ship{
		TrackingNumber: req.GetTrackingNumber(), Carrier: req.GetCarrier(),
	})
	if err != nil {
		return nil, err
	}
	return &ordersv1.ShipOrderResponse{AggregateId: res.AggregateID, Version: res.Version, EventIds: res.EventIDs}, nil
}

// DeliverOrder records the delivery of a SHIPPED order.
func (s *OrderServer) DeliverOrder(ctx context.Context, req *ordersv1.DeliverOrderRequest) (*ordersv1.DeliverOrderResponse, error) {
	res, err := s.run(ctx, ordersv1.OrderCommandService_DeliverOrder_FullMethodName, ids.Canonical(req.GetOrderId()), req, order.Deliver{
		Signature: req.GetSignature(),
	})
	if err != nil {
		return nil, err
	}
	return &ordersv1.DeliverOrderResponse{AggregateId: res.AggregateID, Version: res.Version, EventIds: res.EventIDs}, nil
}

// CancelOrder cancels an order that is neither DELIVERED nor CANCELLED; the calling user (the
// x-user-id metadata) is recorded as who cancelled it.
func (s *OrderServer) CancelOrder(ctx context.Context, req *ordersv1.CancelOrderRequest) (*ordersv1.CancelOrderResponse, error) {
	res, err := s.run(ctx, ordersv1.OrderCommandService_CancelOrder_FullMethodName, ids.Canonical(req.GetOrderId()), req, order.Cancel{
		Reason: req.GetReason(), CancelledBy: MetaFromContext(ctx).UserID,
	})
	if err != nil {
		return nil, err
	}
	return &ordersv1.CancelOrderResponse{AggregateId: res.AggregateID, Version: res.Version, EventIds: res.EventIDs}, nil
}
