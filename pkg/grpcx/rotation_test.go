package grpcx_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/ordersys/ordersys/pkg/config"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/grpcx/grpcxtest"
)

// replaceFile copies from over to with a new modification time (past the reload check).
func replaceFile(t *testing.T, from, to string) {
	t.Helper()
	time.Sleep(1100 * time.Millisecond)
	raw, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to+".tmp", raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(to+".tmp", to); err != nil {
		t.Fatal(err)
	}
}

// within polls f until it returns nil or 5 s pass.
func within(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestClientCARotation replaces the file of the CA that client certificates must chain to while
// the server runs: clients of the new CA get in and clients of the old one no longer do, without
// a restart.
func TestClientCARotation(t *testing.T) {
	old, next := grpcxtest.NewPKI(t), grpcxtest.NewPKI(t)
	old.Issue(t, "server", true)
	old.Issue(t, "client", false)
	next.Issue(t, "client", false)
	clientCA := filepath.Join(t.TempDir(), "client-ca.pem")
	replaceFile(t, old.Path("ca.pem"), clientCA)
	addr := secureServer(t, config.GRPCServer{TLSCertFile: old.Path("server.pem"), TLSKeyFile: old.Path("server-key.pem"),
		TLSClientCAFile: clientCA}, nil)
	dial := func(p *grpcxtest.PKI) *grpc.ClientConn { return dialTLSAs(t, addr, old.Path("ca.pem"), p, "client") }
	if err := healthCheck(dial(old)); err != nil {
		t.Fatalf("a client of the configured CA: %v", err)
	}
	if err := healthCheck(dial(next)); err == nil {
		t.Fatal("a client of another CA got in")
	}
	replaceFile(t, next.Path("ca.pem"), clientCA)
	within(t, "a client of the new CA after the rotation", func() error { return healthCheck(dial(next)) })
	if err := healthCheck(dial(old)); err == nil {
		t.Error("a client of the old CA still gets in after the rotation")
	}
}

// TestJWKSRotationAndIssuer replaces the JWKS file while the server runs: tokens signed by the
// new key are accepted and those of the old key refused, without a restart; a token from
// another issuer is refused.
func TestJWKSRotationAndIssuer(t *testing.T) {
	dir := t.TempDir()
	old, next := grpcxtest.NewIssuer(t, dir, "k-old"), grpcxtest.NewIssuer(t, dir, "k-next")
	jwks := filepath.Join(dir, "served-jwks.json")
	replaceFile(t, old.JWKS, jwks)
	addr := secureServer(t, config.GRPCServer{AuthJWKSFile: jwks, AuthIssuer: "https://issuer.test", AuthAudience: "ordersys"}, nil)
	conn := plainConn(t, addr)
	hour := time.Now().Add(time.Hour)
	call := func(token string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
		_, err := ordersv1.NewOrderCommandServiceClient(conn).ConfirmOrder(ctx, &ordersv1.ConfirmOrderRequest{})
		if status.Code(err) == codes.Unimplemented { // let in: the test service implements nothing
			return nil
		}
		return err
	}
	if err := call(old.Token(t, "u", "ordersys", hour, "writer")); err != nil {
		t.Fatalf("a token of the served key: %v", err)
	}
	if err := call(next.Token(t, "u", "ordersys", hour, "writer")); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("a token of a key not served yet: %v, want Unauthenticated", err)
	}
	replaceFile(t, next.JWKS, jwks)
	within(t, "a token of the new key after the rotation", func() error { return call(next.Token(t, "u", "ordersys", hour, "writer")) })
	if err := call(old.Token(t, "u", "ordersys", hour, "writer")); status.Code(err) != codes.Unauthenticated {
		t.Errorf("a token of the old key after the rotation: %v, want Unauthenticated", err)
	}

	other := secureServer(t, config.GRPCServer{AuthJWKSFile: jwks, AuthIssuer: "https://another-issuer.test", AuthAudience: "ordersys"}, nil)
	conn = plainConn(t, other)
	if err := call(next.Token(t, "u", "ordersys", hour, "writer")); status.Code(err) != codes.Unauthenticated {
		t.Errorf("a token of another issuer: %v, want Unauthenticated", err)
	}
}

// TestReflectionCanBeTurnedOff: with ORDERSYS_GRPC_REFLECTION=false the server answers no
// reflection request; with it on, it lists its services.
func TestReflectionCanBeTurnedOff(t *testing.T) {
	list := func(addr string) ([]string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stream, err := rpb.NewServerReflectionClient(plainConn(t, addr)).ServerReflectionInfo(ctx)
		if err != nil {
			return nil, err
		}
		// A server that refuses the stream may have closed it before the request is sent: Send
		// then says only io.EOF, and Recv gives the status.
		if err := stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		res, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		var names []string
		for _, s := range res.GetListServicesResponse().GetService() {
			names = append(names, s.GetName())
		}
		return names, nil
	}
	on, err := list(secureServer(t, config.GRPCServer{Reflection: true}, nil))
	if err != nil || len(on) == 0 {
		t.Fatalf("reflection on: %v, %v; want the services listed", on, err)
	}
	if off, err := list(secureServer(t, config.GRPCServer{Reflection: false}, nil)); status.Code(err) != codes.Unimplemented {
		t.Fatalf("reflection off: %v, %v; want Unimplemented", off, err)
	}
}
