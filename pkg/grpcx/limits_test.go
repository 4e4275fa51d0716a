package grpcx_test

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/ordersys/ordersys/pkg/config"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/grpcx"
)

// waitingQueries answers GetOrder only when the call's context ends: what a handler sees of a
// call without a deadline.
type waitingQueries struct {
	ordersv1.UnimplementedOrderQueryServiceServer
}

func (waitingQueries) GetOrder(ctx context.Context, _ *ordersv1.GetOrderRequest) (*ordersv1.GetOrderResponse, error) {
	if _, ok := ctx.Deadline(); !ok {
		return nil, status.Error(codes.FailedPrecondition, "the call has no deadline")
	}
	<-ctx.Done()
	return nil, status.FromContextError(ctx.Err()).Err()
}

// limitedServer serves health, the order command service (unimplemented) and waitingQueries
// with the bounds of c.
func limitedServer(t *testing.T, c config.GRPCServer) string {
	t.Helper()
	sec, err := grpcx.LoadSecurity(c)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcx.NewServer(grpcx.ServerOptions{Security: sec})
	ordersv1.RegisterOrderCommandServiceServer(srv, ordersv1.UnimplementedOrderCommandServiceServer{})
	ordersv1.RegisterOrderQueryServiceServer(srv, waitingQueries{})
	return serveOnLoopback(t, srv)
}

func plainConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpcx.ClientConn(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// TestRequestBounds: a request over ORDERSYS_GRPC_MAX_RECV_BYTES is refused with
// ResourceExhausted; a call over ORDERSYS_GRPC_MAX_CONCURRENT_STREAMS on one connection waits
// for a stream; a call without a deadline gets ORDERSYS_GRPC_DEFAULT_TIMEOUT.
func TestRequestBounds(t *testing.T) {
	addr := limitedServer(t, config.GRPCServer{MaxRecvBytes: 1024, MaxConcurrentStreams: 1, DefaultTimeout: 300 * time.Millisecond})
	conn := plainConn(t, addr)
	ctx := context.Background()

	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err := ordersv1.NewOrderCommandServiceClient(conn).ConfirmOrder(cctx, &ordersv1.ConfirmOrderRequest{CommandId: strings.Repeat("x", 2048)})
	cancel()
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a 2 KiB request against a 1 KiB bound: %v, want ResourceExhausted", err)
	}
	cctx, cancel = context.WithTimeout(ctx, 5*time.Second)
	_, err = ordersv1.NewOrderCommandServiceClient(conn).ConfirmOrder(cctx, &ordersv1.ConfirmOrderRequest{CommandId: "small"})
	cancel()
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("a small request: %v, want it through to the (unimplemented) service", err)
	}

	started := time.Now()
	_, err = ordersv1.NewOrderQueryServiceClient(conn).GetOrder(ctx, &ordersv1.GetOrderRequest{}) // no deadline
	if status.Code(err) != codes.DeadlineExceeded || time.Since(started) > 5*time.Second {
		t.Errorf("a call without a deadline: %v after %s, want DeadlineExceeded after the 300 ms default", err, time.Since(started))
	}

	// One stream per connection: a health Watch holds it, so a second call waits.
	wctx, stopWatch := context.WithCancel(ctx)
	watch, err := healthpb.NewHealthClient(conn).Watch(wctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatal(err)
	}
	cctx, cancel = context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{})
	cancel()
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("a second call while the only stream is held: %v, want DeadlineExceeded (waiting for a stream)", err)
	}
	stopWatch()
	if err := healthCheck(conn); err != nil {
		t.Errorf("a call once the stream is free: %v", err)
	}
}

// TestKeepalivePingFloodIsCutOff: a client that pings faster than
// ORDERSYS_GRPC_KEEPALIVE_MIN_TIME is sent GOAWAY "too_many_pings" and disconnected; under a
// setting that allows its pace it is answered and kept.
func TestKeepalivePingFloodIsCutOff(t *testing.T) {
	if goAway := pingFlood(t, limitedServer(t, config.GRPCServer{KeepaliveMinTime: time.Minute})); goAway == nil ||
		goAway.ErrCode != http2.ErrCodeEnhanceYourCalm || !bytes.Contains(goAway.DebugData(), []byte("too_many_pings")) {
		t.Fatalf("5 pings at once against a 1 min minimum: GOAWAY %v, want ENHANCE_YOUR_CALM too_many_pings", goAway)
	}
	if goAway := pingFlood(t, limitedServer(t, config.GRPCServer{KeepaliveMinTime: time.Nanosecond})); goAway != nil {
		t.Fatalf("5 pings at once against a 1 ns minimum: GOAWAY %v %q, want none", goAway.ErrCode, goAway.DebugData())
	}
}

// pingFlood opens a raw HTTP/2 connection, sends 5 pings at once and returns the GOAWAY frame
// the server answers with within a second, nil if none (every ping acknowledged instead).
func pingFlood(t *testing.T, addr string) *http2.GoAwayFrame {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			break // the server may already have closed the connection
		}
	}
	acks := 0
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			if acks < 5 {
				t.Fatalf("connection ended after %d ping acknowledgements, without GOAWAY: %v", acks, err)
			}
			return nil
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			return f
		case *http2.PingFrame:
			if f.IsAck() {
				acks++
			}
		}
	}
}
