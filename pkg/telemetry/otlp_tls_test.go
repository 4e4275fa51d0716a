package telemetry_test

import (
	"context"
	"net"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/ordersys/ordersys/pkg/grpcx/grpcxtest"
	"github.com/ordersys/ordersys/pkg/telemetry"
)

// collector is an OTLP/gRPC trace collector that hands over each export's service names.
type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	got chan string
}

func (c *collector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
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
