// Package telemetry sets up the observability every ordersys service shares: the OpenTelemetry
// tracer provider (exporting over OTLP/gRPC), W3C trace-context helpers used to carry a trace
// through stored events and Kafka messages, a JSON slog logger that stamps trace and span ids,
// and a Prometheus registry served on /metrics next to /healthz.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/ordersys/ordersys/pkg/buildinfo"
)

// Options configures Setup.
type Options struct {
	// ServiceName becomes the service.name resource attribute, e.g. "command".
	ServiceName string
	// ServiceVersion becomes service.version (default buildinfo.Version()).
	ServiceVersion string
	// OTLPEndpoint is the collector's OTLP/gRPC address (host:port, or a URL such as
	// http://collector:4317). Empty disables export; spans still get valid ids.
	OTLPEndpoint string
	// SampleRatio is the fraction of new root traces sampled, 0..1; children follow their parent.
	SampleRatio float64
}

// Setup installs the global TracerProvider and the W3C TraceContext+Baggage propagator.
//
// The provider samples with ParentBased(TraceIDRatioBased(SampleRatio)) and, when OTLPEndpoint or
// the standard OTEL_EXPORTER_OTLP_*ENDPOINT variables name a collector, exports through a batch
// span processor to an OTLP/gRPC exporter (which connects lazily, so an absent collector does
// not fail Setup). The returned shutdown flushes and stops
// the provider; call it once on exit with a bounded context.
func Setup(ctx context.Context, opts Options) (shutdown func(context.Context) error, err error) {
	if opts.ServiceName == "" {
		return nil, errors.New("telemetry: ServiceName is required")
	}
	if math.IsNaN(opts.SampleRatio) || opts.SampleRatio < 0 || opts.SampleRatio > 1 {
		return nil, fmt.Errorf("telemetry: sample ratio %v is not within 0..1", opts.SampleRatio)
	}

	if opts.ServiceVersion == "" {
		opts.ServiceVersion = buildinfo.Version()
	}
	attrs := []attribute.KeyValue{semconv.ServiceName(opts.ServiceName), semconv.ServiceVersion(opts.ServiceVersion)}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL, attrs...))
	if err != nil {
		return nil, fmt.Errorf("telemetry: build resource: %w", err)
	}

	tpOpts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(opts.SampleRatio))),
	}
	if opts.OTLPEndpoint != "" || otelEndpointSet() {
		// The exporter reads the standard OTEL_EXPORTER_OTLP_* variables (endpoint, headers,
		// certificate, client certificate, insecure, timeout, compression). When they name an
		// endpoint, they decide alone: OTLPEndpoint (which has a development default) is not
		// used. Otherwise OTLPEndpoint with a scheme: https:// means TLS (trusting
		// OTEL_EXPORTER_OTLP_CERTIFICATE, else the system roots) and http:// plaintext; a bare
		// host:port is plaintext unless the standard variables ask for TLS (a certificate, or
		// OTEL_EXPORTER_OTLP_INSECURE=false).
		var expOpts []otlptracegrpc.Option
		switch {
		case otelEndpointSet():
		case strings.Contains(opts.OTLPEndpoint, "://"):
			expOpts = append(expOpts, otlptracegrpc.WithEndpointURL(opts.OTLPEndpoint))
		case opts.OTLPEndpoint != "":
			expOpts = append(expOpts, otlptracegrpc.WithEndpoint(opts.OTLPEndpoint))
			if !otelTLSAsked() {
				expOpts = append(expOpts, otlptracegrpc.WithInsecure())
			}
		}
		exp, err := otlptracegrpc.New(ctx, expOpts...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: create OTLP exporter for %s: %w", opts.OTLPEndpoint, err)
		}
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)

	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(Propagator())
	return tp.Shutdown, nil
}

// otelEndpointSet reports whether the standard variables name an OTLP endpoint.
func otelEndpointSet() bool {
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// otelTLSAsked reports whether the standard variables ask for TLS to the collector: a CA
// certificate, or insecure set to false.
func otelTLSAsked() bool {
	for _, v := range []string{"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE"} {
		if os.Getenv(v) != "" {
			return true
		}
	}
	for _, v := range []string{"OTEL_EXPORTER_OTLP_TRACES_INSECURE", "OTEL_EXPORTER_OTLP_INSECURE"} {
		if strings.EqualFold(strings.TrimSpace(os.Getenv(v)), "false") {
			return true
		}
	}
	return false
}

// Propagator returns the composite W3C TraceContext + Baggage propagator Setup installs.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}
