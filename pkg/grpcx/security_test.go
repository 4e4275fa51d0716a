package grpcx_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ordersys/ordersys/pkg/config"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/grpcx"
)

// pki is a throw-away CA with a server certificate for 127.0.0.1 and a client certificate,
// written as PEM files into a temporary folder.
type pki struct {
	dir    string
	caKey  *ecdsa.PrivateKey
	caCert *x509.Certificate
	serial int64
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	p.caKey = mustKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.caCert, _ = x509.ParseCertificate(der)
	p.write(t, "ca.pem", "CERTIFICATE", der)
	p.serial = 10
	return p
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue writes a certificate (server or client) signed by the CA as name.pem and name-key.pem and
// returns its serial number.
func (p *pki) issue(t *testing.T, name string, server bool) int64 {
	t.Helper()
	p.serial++
	key := mustKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.IPAddresses, tmpl.ExtKeyUsage = []net.IP{net.ParseIP("127.0.0.1")}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p.write(t, name+".pem", "CERTIFICATE", der)
	p.write(t, name+"-key.pem", "EC PRIVATE KEY", kder)
	return p.serial
}

func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

// issuer signs tokens with a key published in a JWKS file.
type issuer struct {
	key  jwk.Key
	jwks string
}

func newIssuer(t *testing.T, dir, kid string) *issuer {
	t.Helper()
	key, err := jwk.Import(mustKey(t))
	if err != nil {
		t.Fatal(err)
	}
	_ = key.Set(jwk.KeyIDKey, kid)
	_ = key.Set(jwk.AlgorithmKey, jwa.ES256())
	pub, err := key.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, kid+".jwks.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return &issuer{key: key, jwks: path}
}

func (i *issuer) token(t *testing.T, sub, aud string, exp time.Time, roles ...string) string {
	t.Helper()
	tok, err := jwt.NewBuilder().Subject(sub).Issuer("https://issuer.test").Audience([]string{aud}).Expiration(exp).
		IssuedAt(time.Now()).Claim("roles", roles).Build()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), i.key))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

// secureServer serves the order command and query services (unimplemented: a call that passes
// authentication answers Unimplemented) with sec, recording the principal of each call.
func secureServer(t *testing.T, c config.GRPCServer, seen chan<- grpcx.Principal) string {
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
	srv := grpcx.NewServer(grpcx.ServerOptions{Security: sec, UnaryInterceptors: []grpc.UnaryServerInterceptor{record}})
	ordersv1.RegisterOrderCommandServiceServer(srv, ordersv1.UnimplementedOrderCommandServiceServer{})
	ordersv1.RegisterOrderQueryServiceServer(srv, ordersv1.UnimplementedOrderQueryServiceServer{})
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

func dialTLS(t *testing.T, addr string, p *pki, client string) *grpc.ClientConn {
	t.Helper()
	cert, key := "", ""
	if client != "" {
		cert, key = p.path(client+".pem"), p.path(client+"-key.pem")
	}
	creds, err := grpcx.ClientTLS(p.path("ca.pem"), cert, key)
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
	p := newPKI(t)
	p.issue(t, "server", true)
	p.issue(t, "client", false)

	addr := secureServer(t, config.GRPCServer{TLSCertFile: p.path("server.pem"), TLSKeyFile: p.path("server-key.pem"), Reflection: true}, nil)
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

	mtls := secureServer(t, config.GRPCServer{TLSCertFile: p.path("server.pem"), TLSKeyFile: p.path("server-key.pem"),
		TLSClientCAFile: p.path("ca.pem")}, nil)
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
	p := newPKI(t)
	first := p.issue(t, "server", true)
	addr := secureServer(t, config.GRPCServer{TLSCertFile: p.path("server.pem"), TLSKeyFile: p.path("server-key.pem")}, nil)
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
	second := p.issue(t, "server", true)
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
	good, rogue := newIssuer(t, dir, "k1"), newIssuer(t, dir, "k2")
	seen := make(chan grpcx.Principal, 10)
	addr := secureServer(t, config.GRPCServer{AuthJWKSFile: good.jwks, AuthIssuer: "https://issuer.test", AuthAudience: "ordersys",
		AuthRolesClaim: "roles", Reflection: true}, seen)
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
		{"expired", good.token(t, "u1", "ordersys", time.Now().Add(-time.Hour), "writer"), false, codes.Unauthenticated},
		{"other audience", good.token(t, "u1", "billing", hour, "writer"), false, codes.Unauthenticated},
		{"unknown key", rogue.token(t, "u1", "ordersys", hour, "writer"), false, codes.Unauthenticated},
		{"reader calls a command", good.token(t, "u1", "ordersys", hour, "reader"), false, codes.PermissionDenied},
		{"writer calls a query", good.token(t, "u1", "ordersys", hour, "writer"), true, codes.PermissionDenied},
		{"admin alone calls a command", good.token(t, "u1", "ordersys", hour, "admin"), false, codes.PermissionDenied},
		{"writer calls a command", good.token(t, "writer-7", "ordersys", hour, "writer"), false, codes.Unimplemented},
		{"reader calls a query", good.token(t, "u1", "ordersys", hour, "reader", "writer"), true, codes.Unimplemented},
	}
	for _, c := range cases {
		if got := call(c.token, c.query); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if p := <-seen; p.Subject != "writer-7" {
		t.Errorf("principal of the first call let in: %+v, want subject writer-7", p)
	}
	if err := healthCheck(conn); err != nil {
		t.Errorf("health without a token: %v", err)
	}
}
