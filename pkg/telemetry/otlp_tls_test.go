package telemetry_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/ordersys/ordersys/pkg/grpcx/grpcxtest"
	"github.com/ordersys/ordersys/pkg/telemetry"
)

// collector is an OTLP/gRPC trace collector that hands over each export's service names (and,
// when auth is not nil, its authorization header).
type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	got  chan string
	auth chan string
}

func (c *collector) Export(ctx context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	if md, _ := metadata.FromIncomingContext(ctx); c.auth != nil {
		c.auth <- strings.Join(md.Get("authorization"), ",")
	}
	for _, rs := range req.GetResourceSpans() {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				c.got <- a.GetValue().GetStringValue()
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// TestOTLPExportOverTLS sends spans to a collector that speaks only TLS: an https:// endpoint
// with OTEL_EXPORTER_OTLP_CERTIFICATE naming the CA, as a collector behind TLS needs.
func TestOTLPExportOverTLS(t *testing.T) {
	p := grpcxtest.NewPKI(t)
	p.Issue(t, "server", true)
	creds, err := grpcx.TLSFiles{CertFile: p.Path("server.pem"), KeyFile: p.Path("server-key.pem")}.ServerCredentials()
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(creds))
	c := &collector{got: make(chan string, 10)}
	collectortrace.RegisterTraceServiceServer(srv, c)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()

	t.Setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", p.Path("ca.pem"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	shutdown, err := telemetry.Setup(ctx, telemetry.Options{ServiceName: "tls-test", OTLPEndpoint: "https://" + ln.Addr().String(), SampleRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(ctx, "over tls")
	span.End()
	if err := shutdown(ctx); err != nil {
		t.Fatalf("flush over TLS: %v", err)
	}
	select {
	case name := <-c.got:
		if name != "tls-test" {
			t.Fatalf("collector got service %q", name)
		}
	default:
		t.Fatal("the collector received no span")
	}
}

// startCollector serves a collector on a loopback port, over TLS when opts say so.
func startCollector(t *testing.T, c *collector, opts ...grpc.ServerOption) string {
	t.Helper()
	srv := grpc.NewServer(opts...)
	collectortrace.RegisterTraceServiceServer(srv, c)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// exportOneSpan sets telemetry up with opts, ends one span and flushes it.
func exportOneSpan(t *testing.T, opts telemetry.Options) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	shutdown, err := telemetry.Setup(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(ctx, "one span")
	span.End()
	if err := shutdown(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// TestStandardOTLPVariablesWin: when OTEL_EXPORTER_OTLP_ENDPOINT names a collector, spans go
// there (with the OTEL_EXPORTER_OTLP_HEADERS headers), not to ORDERSYS_OTLP_ENDPOINT's
// development default.
func TestStandardOTLPVariablesWin(t *testing.T) {
	c := &collector{got: make(chan string, 10), auth: make(chan string, 10)}
	addr := startCollector(t, c)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+addr)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20collector-token")
	exportOneSpan(t, telemetry.Options{ServiceName: "env-test", OTLPEndpoint: "127.0.0.1:1", SampleRatio: 1})
	select {
	case name := <-c.got:
		if name != "env-test" {
			t.Fatalf("collector got service %q", name)
		}
	default:
		t.Fatal("the collector named by OTEL_EXPORTER_OTLP_ENDPOINT received no span")
	}
	if got := <-c.auth; got != "Bearer collector-token" {
		t.Fatalf("authorization header at the collector: %q, want the one of OTEL_EXPORTER_OTLP_HEADERS", got)
	}
}

// TestBareEndpointWithACertificateIsTLS: a host:port endpoint with OTEL_EXPORTER_OTLP_CERTIFICATE
// set speaks TLS (trusting that CA) to a collector that speaks only TLS, rather than plaintext.
func TestBareEndpointWithACertificateIsTLS(t *testing.T) {
	p := grpcxtest.NewPKI(t)
	p.Issue(t, "server", true)
	creds, err := grpcx.TLSFiles{CertFile: p.Path("server.pem"), KeyFile: p.Path("server-key.pem")}.ServerCredentials()
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{got: make(chan string, 10)}
	addr := startCollector(t, c, grpc.Creds(creds))
	t.Setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", p.Path("ca.pem"))
	exportOneSpan(t, telemetry.Options{ServiceName: "bare-tls", OTLPEndpoint: addr, SampleRatio: 1})
	select {
	case name := <-c.got:
		if name != "bare-tls" {
			t.Fatalf("collector got service %q", name)
		}
	default:
		t.Fatal("the TLS collector received no span from a bare endpoint with a certificate")
	}
}
