package query_test

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/ordersys/ordersys/services/query/internal/grpcapi"
)

// TestInvalidArguments checks that every RPC answers bad input with INVALID_ARGUMENT and a
// google.rpc.BadRequest violation naming the field.
func TestInvalidArguments(t *testing.T) {
	srv, _ := defaultServer(t)
	ctx := ctxT(t)
	oq, cq := srv.oq, srv.cq
	cases := []struct {
		name, field string
		call        func() error
	}{
		{"GetOrder bad id", "order_id", func() error {
			_, err := oq.GetOrder(ctx, &ordersv1.GetOrderRequest{OrderId: "12345"})
			return err
		}},
		{"GetOrder no id", "order_id", func() error {
			_, err := oq.GetOrder(ctx, &ordersv1.GetOrderRequest{})
			return err
		}},
		{"GetOrder negative min_version", "min_version", func() error {
			_, err := oq.GetOrder(ctx, &ordersv1.GetOrderRequest{OrderId: ids.New(), MinVersion: proto.Int64(-1)})
			return err
		}},
		{"ListOrdersByCustomer bad id", "customer_id", func() error {
			_, err := oq.ListOrdersByCustomer(ctx, &ordersv1.ListOrdersByCustomerRequest{CustomerId: "x"})
			return err
		}},
		{"ListOrdersByCustomer negative page size", "page_size", func() error {
			_, err := oq.ListOrdersByCustomer(ctx, &ordersv1.ListOrdersByCustomerRequest{CustomerId: ids.New(), PageSize: -1})
			return err
		}},
		{"ListOrdersByStatus unspecified", "status", func() error {
			_, err := oq.ListOrdersByStatus(ctx, &ordersv1.ListOrdersByStatusRequest{})
			return err
		}},
		{"ListOrdersByStatus unknown", "status", func() error {
			_, err := oq.ListOrdersByStatus(ctx, &ordersv1.ListOrdersByStatusRequest{Status: 42})
			return err
		}},
		{"ListOrdersByStatus negative page size", "page_size", func() error {
			_, err := oq.ListOrdersByStatus(ctx, &ordersv1.ListOrdersByStatusRequest{Status: ordersv1.OrderStatus_ORDER_STATUS_CREATED, PageSize: -5})
			return err
		}},
		{"GetOrderHistory bad id", "order_id", func() error {
			_, err := oq.GetOrderHistory(ctx, &ordersv1.GetOrderHistoryRequest{OrderId: "zz"})
			return err
		}},
		{"GetOrderAt bad id", "order_id", func() error {
			_, err := oq.GetOrderAt(ctx, &ordersv1.GetOrderAtRequest{OrderId: "zz", Point: &ordersv1.GetOrderAtRequest_Version{Version: 1}})
			return err
		}},
		{"GetOrderAt negative version", "version", func() error {
			_, err := oq.GetOrderAt(ctx, &ordersv1.GetOrderAtRequest{OrderId: ids.New(), Point: &ordersv1.GetOrderAtRequest_Version{Version: -3}})
			return err
		}},
		{"GetCustomer no id", "customer_id", func() error {
			_, err := cq.GetCustomer(ctx, &ordersv1.GetCustomerRequest{})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkBadRequest(t, tc.call(), tc.field) })
	}
}

// TestUnavailableWhenTheDatabaseIsGone runs a server whose session is closed once it serves:
// every RPC answers UNAVAILABLE (not INTERNAL) and the health watch reports NOT_SERVING.
func TestUnavailableWhenTheDatabaseIsGone(t *testing.T) {
	e := env(t)
	session, err := cql.Connect(cqltest.SessionConfig(e.keyspace))
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, session)
	session.Close() // the database is gone once the service runs
	ctx := ctxT(t)

	calls := map[string]func() error{
		"GetOrder": func() error {
			_, err := srv.oq.GetOrder(ctx, &ordersv1.GetOrderRequest{OrderId: ids.New()})
			return err
		},
		"ListOrdersByCustomer": func() error {
			_, err := srv.oq.ListOrdersByCustomer(ctx, &ordersv1.ListOrdersByCustomerRequest{CustomerId: ids.New()})
			return err
		},
		"ListOrdersByStatus": func() error {
			_, err := srv.oq.ListOrdersByStatus(ctx, &ordersv1.ListOrdersByStatusRequest{Status: ordersv1.OrderStatus_ORDER_STATUS_SHIPPED})
			return err
		},
		"GetOrderHistory": func() error {
			_, err := srv.oq.GetOrderHistory(ctx, &ordersv1.GetOrderHistoryRequest{OrderId: ids.New()})
			return err
		},
		"GetOrderAt": func() error {
			_, err := srv.oq.GetOrderAt(ctx, &ordersv1.GetOrderAtRequest{OrderId: ids.New(), Point: &ordersv1.GetOrderAtRequest_Version{Version: 2}})
			return err
		},
		"GetCustomer": func() error {
			_, err := srv.cq.GetCustomer(ctx, &ordersv1.GetCustomerRequest{CustomerId: ids.New()})
			return err
		},
	}
	for name, call := range calls {
		if err := call(); status.Code(err) != codes.Unavailable {
			t.Errorf("%s: %v, want Unavailable", name, err)
		}
	}

	// The service's health watch turns the server NOT_SERVING.
	hc := healthpb.NewHealthClient(srv.conn)
	for _, name := range grpcapi.ServiceNames {
		waitHealth(t, hc, name, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	// Not ready, but alive: the liveness service a liveness probe checks stays SERVING, so a
	// store outage takes the pod out of the Service without Kubernetes restarting it.
	waitHealth(t, hc, grpcx.HealthServiceLiveness, healthpb.HealthCheckResponse_SERVING)
}

// TestHealthAndReflection checks a healthy server: SERVING for the server and both services,
// which reflection lists.
func TestHealthAndReflection(t *testing.T) {
	srv := startServer(t, nil)
	ctx := ctxT(t)
	hc := healthpb.NewHealthClient(srv.conn)
	for _, name := range grpcapi.ServiceNames {
		waitHealth(t, hc, name, healthpb.HealthCheckResponse_SERVING)
	}

	stream, err := reflectionpb.NewServerReflectionClient(srv.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	res, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range res.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"orders.v1.OrderQueryService", "orders.v1.CustomerQueryService", "grpc.health.v1.Health"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}
	_ = stream.CloseSend()
}

// waitHealth waits (up to 10s) until the health status of service is want.
func waitHealth(t *testing.T, hc healthpb.HealthClient, service string, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := hc.Check(ctxT(t), &healthpb.HealthCheckRequest{Service: service})
		if err == nil && res.GetStatus() == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("health of %q: %v, %v; want %v", service, res.GetStatus(), err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
