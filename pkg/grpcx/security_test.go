package grpcx_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ordersys/ordersys/pkg/config"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/ordersys/ordersys/pkg/grpcx/grpcxtest"
)

// secureServer serves the order command and query services (unimplemented: a call that passes
// authentication answers Unimplemented) with sec, recording the principal of each call. Its
// log, at debug level, goes to logs when not nil.
func secureServer(t *testing.T, c config.GRPCServer, seen chan<- grpcx.Principal, logs ...*bytes.Buffer) string {
	t.Helper()
	sec, err := grpcx.LoadSecurity(c)
	if err != nil {
		t.Fatal(err)
	}
	record := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if p, ok := grpcx.PrincipalFromContext(ctx); ok && seen != nil {
			seen <- p
		}
		return h(ctx, req)
	}
	logger := slog.New(slog.DiscardHandler)
	if len(logs) > 0 {
		logger = slog.New(slog.NewJSONHandler(logs[0], &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv := grpcx.NewServer(grpcx.ServerOptions{Security: sec, Logger: logger, UnaryInterceptors: []grpc.UnaryServerInterceptor{record}})
	ordersv1.RegisterOrderCommandServiceServer(srv, ordersv1.UnimplementedOrderCommandServiceServer{})
	ordersv1.RegisterOrderQueryServiceServer(srv, ordersv1.UnimplementedOrderQueryServiceServer{})
	return serveOnLoopback(t, srv)
}

// serveOnLoopback serves srv on a free loopback port until the test ends and returns its address.
func serveOnLoopback(t *testing.T, srv *grpcx.Server) string {
	t.Helper()
	ln, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeListener(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

func dialTLS(t *testing.T, addr string, p *grpcxtest.PKI, client string) *grpc.ClientConn {
	t.Helper()
	return dialTLSAs(t, addr, p.Path("ca.pem"), p, client)
}

// dialTLSAs connects trusting the server CA serverCA and presenting the client certificate
// client of p (none when empty).
func dialTLSAs(t *testing.T, addr, serverCA string, p *grpcxtest.PKI, client string) *grpc.ClientConn {
	t.Helper()
	cert, key := "", ""
	if client != "" {
		cert, key = p.Path(client+".pem"), p.Path(client+"-key.pem")
	}
	creds, err := grpcx.ClientTLS(serverCA, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpcx.ClientConn(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func healthCheck(conn *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

func TestTLSAndMutualTLS(t *testing.T) {
	p := grpcxtest.NewPKI(t)
	p.Issue(t, "server", true)
	p.Issue(t, "client", false)

	addr := secureServer(t, config.GRPCServer{TLSCertFile: p.Path("server.pem"), TLSKeyFile: p.Path("server-key.pem"), Reflection: true}, nil)
	plain, err := grpcx.ClientConn(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := healthCheck(plain); status.Code(err) != codes.Unavailable {
		t.Errorf("plaintext client against a TLS server: %v, want Unavailable", err)
	}
	if err := healthCheck(dialTLS(t, addr, p, "")); err != nil {
		t.Errorf("TLS client: %v", err)
	}

	mtls := secureServer(t, config.GRPCServer{TLSCertFile: p.Path("server.pem"), TLSKeyFile: p.Path("server-key.pem"),
		TLSClientCAFile: p.Path("ca.pem")}, nil)
	if err := healthCheck(dialTLS(t, mtls, p, "")); err == nil {
		t.Error("mutual TLS without a client certificate: answered")
	}
	if err := healthCheck(dialTLS(t, mtls, p, "client")); err != nil {
		t.Errorf("mutual TLS with a client certificate: %v", err)
	}
}

// TestCertificateRotation replaces the server's certificate files while it runs: new
// connections get the new certificate without a restart.
func TestCertificateRotation(t *testing.T) {
	p := grpcxtest.NewPKI(t)
	first := p.Issue(t, "server", true)
	addr := secureServer(t, config.GRPCServer{TLSCertFile: p.Path("server.pem"), TLSKeyFile: p.Path("server-key.pem")}, nil)
	serial := func() int64 {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}) //nolint:gosec // reads the served certificate only
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(); got != first {
		t.Fatalf("serving serial %d, want %d", got, first)
	}
	time.Sleep(1100 * time.Millisecond) // a new modification time, past the reload check interval
	second := p.Issue(t, "server", true)
	deadline := time.Now().Add(5 * time.Second)
	for serial() != second {
		if time.Now().After(deadline) {
			t.Fatalf("still serving serial %d after rotation to %d", first, second)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestTokensAndRoles(t *testing.T) {
	dir := t.TempDir()
	good, rogue := grpcxtest.NewIssuer(t, dir, "k1"), grpcxtest.NewIssuer(t, dir, "k2")
	seen := make(chan grpcx.Principal, 10)
	var logs bytes.Buffer
	addr := secureServer(t, config.GRPCServer{AuthJWKSFile: good.JWKS, AuthIssuer: "https://issuer.test", AuthAudience: "ordersys",
		AuthRolesClaim: "roles", Reflection: true}, seen, &logs)
	conn, err := grpcx.ClientConn(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	commands, queries := ordersv1.NewOrderCommandServiceClient(conn), ordersv1.NewOrderQueryServiceClient(conn)
	hour := time.Now().Add(time.Hour)
	call := func(token string, query bool) codes.Code {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
		}
		if query {
			_, err = queries.GetOrder(ctx, &ordersv1.GetOrderRequest{})
		} else {
			_, err = commands.ConfirmOrder(ctx, &ordersv1.ConfirmOrderRequest{})
		}
		return status.Code(err)
	}
	cases := []struct {
		name  string
		token string
		query bool
		want  codes.Code
	}{
		{"no token", "", false, codes.Unauthenticated},
		{"garbage", "not.a.jwt", false, codes.Unauthenticated},
		{"expired", good.Token(t, "u1", "ordersys", time.Now().Add(-time.Hour), "writer"), false, codes.Unauthenticated},
		{"other audience", good.Token(t, "u1", "billing", hour, "writer"), false, codes.Unauthenticated},
		{"unknown key", rogue.Token(t, "u1", "ordersys", hour, "writer"), false, codes.Unauthenticated},
		{"no subject", good.Token(t, "", "ordersys", hour, "writer"), false, codes.Unauthenticated},
		{"reader calls a command", good.Token(t, "u1", "ordersys", hour, "reader"), false, codes.PermissionDenied},
		{"writer calls a query", good.Token(t, "u1", "ordersys", hour, "writer"), true, codes.PermissionDenied},
		{"admin alone calls a command", good.Token(t, "u1", "ordersys", hour, "admin"), false, codes.PermissionDenied},
		{"writer calls a command", good.Token(t, "writer-7", "ordersys", hour, "writer"), false, codes.Unimplemented},
		{"reader calls a query", good.Token(t, "u1", "ordersys", hour, "reader", "writer"), true, codes.Unimplemented},
	}
	for _, c := range cases {
		if got := call(c.token, c.query); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	// Every call was logged at debug level, refused or not; no token appears in the log.
	for _, c := range cases {
		if len(c.token) > 20 && strings.Contains(logs.String(), c.token[len(c.token)-20:]) {
			t.Errorf("the log holds the token of %q", c.name)
		}
	}
	if !strings.Contains(logs.String(), "ConfirmOrder") {
		t.Error("the calls were not logged: the check above checked nothing")
	}
	if p := <-seen; p.Subject != "writer-7" {
		t.Errorf("principal of the first call let in: %+v, want subject writer-7", p)
	}
	if err := healthCheck(conn); err != nil {
		t.Errorf("health without a token: %v", err)
	}
}
