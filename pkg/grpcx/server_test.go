package grpcx_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/grpcx"
)

// probe is a tiny test service: its Do method acts on the request string.
type probe struct{ started chan struct{} }

type prober interface {
	Do(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error)
}

func (p *probe) Do(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	switch in.GetValue() {
	case "panic":
		panic("boom")
	case "rule":
		return nil, es.Rule("order.confirm.requires_created", "order is CANCELLED")
	case "block":
		close(p.started)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return wrapperspb.String("echo " + in.GetValue()), nil
}

const probeService = "ordersys.test.Probe"

var probeDesc = grpc.ServiceDesc{
	ServiceName: probeService,
	HandlerType: (*prober)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Do",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, req any) (any, error) {
				return srv.(prober).Do(ctx, req.(*wrapperspb.StringValue))
			}
			if interceptor == nil {
				return h(ctx, in)
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/" + probeService + "/Do"}, h)
		},
	}},
}

func callProbe(ctx context.Context, conn *grpc.ClientConn, value string) (string, error) {
	out := new(wrapperspb.StringValue)
	err := conn.Invoke(ctx, "/"+probeService+"/Do", wrapperspb.String(value), out)
	return out.GetValue(), err
}

type testServer struct {
	srv    *grpcx.Server
	conn   *grpc.ClientConn
	reg    *prometheus.Registry
	logs   *bytes.Buffer
	probe  *probe
	cancel context.CancelFunc
	served chan error
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	ts := &testServer{reg: prometheus.NewRegistry(), logs: new(bytes.Buffer), probe: &probe{started: make(chan struct{})}}
	logger := slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts.srv = grpcx.NewServer(grpcx.ServerOptions{Logger: logger, Registry: ts.reg, ServiceName: "test", ShutdownTimeout: time.Second})
	ts.srv.RegisterService(&probeDesc, ts.probe)

	ln, err := ts.srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var ctx context.Context
	ctx, ts.cancel = context.WithCancel(context.Background())
	ts.served = make(chan error, 1)
	go func() { ts.served <- ts.srv.ServeListener(ctx, ln) }()

	ts.conn, err = grpcx.ClientConn(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ts.conn.Close()
		ts.cancel()
		select {
		case <-ts.served:
		case <-time.After(5 * time.Second):
			t.Error("server did not stop")
		}
	})
	return ts
}

func TestServerHealthReflectionAndErrors(t *testing.T) {
	ts := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	health := healthpb.NewHealthClient(ts.conn)
	for _, svc := range []string{"", probeService} {
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc}, grpc.WaitForReady(true))
		if err != nil {
			t.Fatalf("health check %q: %v", svc, err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %q = %v", svc, resp.GetStatus())
		}
	}

	stream, err := reflectionpb.NewServerReflectionClient(ts.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", probeService} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, lacking %s", names, want)
		}
	}
	_ = stream.CloseSend()

	if got, err := callProbe(ctx, ts.conn, "hi"); err != nil || got != "echo hi" {
		t.Fatalf("Do(hi) = %q, %v", got, err)
	}

	_, err = callProbe(ctx, ts.conn, "rule")
	st := status.Convert(err)
	if st.Code() != codes.FailedPrecondition || st.Message() != "order is CANCELLED" {
		t.Fatalf("Do(rule) = %v", err)
	}
	if d := st.Details(); len(d) != 1 || d[0].(*errdetails.PreconditionFailure).GetViolations()[0].GetType() != "order.confirm.requires_created" {
		t.Errorf("Do(rule) details %v", d)
	}

	_, err = callProbe(ctx, ts.conn, "panic")
	if st := status.Convert(err); st.Code() != codes.Internal || st.Message() != grpcx.InternalMessage {
		t.Fatalf("Do(panic) = %v", err)
	}
	if !strings.Contains(ts.logs.String(), "panic in grpc handler") || !strings.Contains(ts.logs.String(), "boom") {
		t.Errorf("panic not logged: %s", ts.logs.String())
	}

	for code, want := range map[string]float64{"OK": 1, "FailedPrecondition": 1, "Internal": 1} {
		c, err := handledCounter(ts.reg, probeService, "Do", code)
		if err != nil {
			t.Fatal(err)
		}
		if c != want {
			t.Errorf("ordersys_grpc_server_handled_total{code=%s} = %v, want %v", code, c, want)
		}
	}
	mfs, err := ts.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(mfs, func(mf *dto.MetricFamily) bool {
		return mf.GetName() == "ordersys_grpc_server_handling_seconds" && len(mf.GetMetric()) > 0
	}) {
		t.Error("no ordersys_grpc_server_handling_seconds series")
	}
}

func handledCounter(reg *prometheus.Registry, svc, method, code string) (float64, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() != "ordersys_grpc_server_handled_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["grpc_service"] == svc && labels["grpc_method"] == method && labels["grpc_code"] == code {
				return m.GetCounter().GetValue(), nil
			}
		}
	}
	return 0, nil
}

func TestGracefulStopForcesAfterDeadline(t *testing.T) {
	ts := startServer(t)
	errc := make(chan error, 1)
	go func() {
		_, err := callProbe(context.Background(), ts.conn, "block")
		errc <- err
	}()
	select {
	case <-ts.probe.started:
	case <-time.After(5 * time.Second):
		t.Fatal("blocking call never arrived")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ts.srv.GracefulStop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GracefulStop = %v, want deadline exceeded", err)
	}
	if err := <-errc; status.Code(err) == codes.OK {
		t.Fatal("in-flight call succeeded after a hard stop")
	}
	resp, err := ts.srv.Health.Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health after stop = %v, %v", resp, err)
	}
	select {
	case err := <-ts.served:
		if err != nil {
			t.Fatalf("Serve returned %v after stop", err)
		}
		ts.served <- nil // let the cleanup see it
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after GracefulStop")
	}
}

func TestServeReportsAddressInUse(t *testing.T) {
	ts := startServer(t)
	other := grpcx.NewServer(grpcx.ServerOptions{Registry: ts.reg}) // a shared registry must be fine
	if err := other.Serve(context.Background(), ts.conn.Target()); err == nil {
		t.Fatal("Serve on a taken address succeeded")
	}
}
