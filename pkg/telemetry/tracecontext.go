package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
)

// TraceContextFromContext renders the span context of ctx as W3C traceparent and tracestate
// header values, both empty when ctx carries no valid span. The command service stores them
// with each event so that the relay and the projector can continue the trace.
func TraceContextFromContext(ctx context.Context) (traceparent, tracestate string) {
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	return carrier.Get("traceparent"), carrier.Get("tracestate")
}

// ContextWithTraceContext returns ctx carrying the remote span context described by the W3C
// traceparent and tracestate values, so that spans started from it join that trace. An empty or
// malformed traceparent leaves ctx unchanged.
func ContextWithTraceContext(ctx context.Context, traceparent, tracestate string) context.Context {
	if traceparent == "" {
		return ctx
	}
	carrier := propagation.MapCarrier{"traceparent": traceparent}
	if tracestate != "" {
		carrier["tracestate"] = tracestate
	}
	return propagation.TraceContext{}.Extract(ctx, carrier)
}
