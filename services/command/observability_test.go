package command_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/services/command/internal/grpcapi"
)

func TestHealthAndReflection(t *testing.T) {
	s := defaultServer(t)
	ctx := ctxT(t)
	hc := healthpb.NewHealthClient(s.conn)
	for _, name := range grpcapi.ServiceNames {
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health of %q: %v %v", name, r, err)
		}
	}
	info := s.grpc.GRPC.GetServiceInfo()
	for _, name := range []string{"orders.v1.OrderCommandService", "orders.v1.CustomerCommandService", "grpc.reflection.v1.ServerReflection", "grpc.health.v1.Health"} {
		if _, ok := info[name]; !ok {
			t.Errorf("service %s not registered (have %v)", name, info)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.grpc.GracefulStop(sctx); err != nil {
		t.Fatal(err)
	}
	r, err := s.grpc.Health.Check(ctx, &healthpb.HealthCheckRequest{Service: "orders.v1.OrderCommandService"})
	if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("after stop: %v %v", r, err)
	}
}

func TestMetadataIsStored(t *testing.T) {
	s := defaultServer(t)
	ctx := ctxT(t)

	t.Run("given correlation id, user id and trace", func(t *testing.T) {
		tctx, span := otel.Tracer("client").Start(ctx, "client call")
		defer span.End()
		tctx = metadata.AppendToOutgoingContext(tctx, grpcapi.MetadataCorrelationID, "corr-123", grpcapi.MetadataUserID, "alice")
		id, cmdID := ids.New(), ids.New()
		var header metadata.MD
		_, err := s.oc.CreateOrder(tctx, &ordersv1.CreateOrderRequest{OrderId: id, CustomerId: s.activeCustomer(t), Items: items(1), CommandId: cmdID}, grpc.Header(&header))
		if err != nil {
			t.Fatal(err)
		}
		if got := header.Get(grpcapi.MetadataCorrelationID); !slices.Equal(got, []string{"corr-123"}) {
			t.Fatalf("response header %s = %v", grpcapi.MetadataCorrelationID, got)
		}
		e := loadEvents(t, s.store, id)[0]
		traceID := span.SpanContext().TraceID().String()
		if e.CorrelationID != "corr-123" || e.UserID != "alice" || e.CausationID != cmdID ||
			!strings.HasPrefix(e.TraceParent, "00-"+traceID+"-") || e.Metadata["command"] != "CreateOrder" {
			t.Fatalf("stored envelope %+v, want correlation corr-123, user alice, causation %s, trace %s", e, cmdID, traceID)
		}
		// The call's server span carries the ids that find this command's trace.
		want := map[string]string{"correlation_id": "corr-123", "aggregate_id": id, "command_id": cmdID, "causation_id": cmdID}
		if got := serverSpanAttrs(t, span.SpanContext().TraceID()); !maps.Equal(subset(got, want), want) {
			t.Fatalf("server span attributes %v, want %v", got, want)
		}
	})

	t.Run("generated correlation and causation ids", func(t *testing.T) {
		id := ids.New()
		var header metadata.MD
		_, err := s.oc.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: id, CustomerId: s.activeCustomer(t), Items: items(1)}, grpc.Header(&header))
		if err != nil {
			t.Fatal(err)
		}
		got := header.Get(grpcapi.MetadataCorrelationID)
		if len(got) != 1 || !ids.Valid(got[0]) {
			t.Fatalf("generated correlation id %v", got)
		}
		e := loadEvents(t, s.store, id)[0]
		if e.CorrelationID != got[0] || !ids.Valid(e.CausationID) || e.UserID != "" || e.TraceParent == "" {
			t.Fatalf("stored envelope %+v", e)
		}
	})

	t.Run("correlation id echoed on errors too", func(t *testing.T) {
		var header metadata.MD
		tctx, span := otel.Tracer("client").Start(ctx, "client call")
		defer span.End()
		mctx := metadata.AppendToOutgoingContext(tctx, grpcapi.MetadataCorrelationID, "corr-err")
		_, err := s.oc.ConfirmOrder(mctx, &ordersv1.ConfirmOrderRequest{OrderId: ids.New()}, grpc.Header(&header))
		wantCode(t, err, codes.NotFound)
		if got := header.Get(grpcapi.MetadataCorrelationID); !slices.Equal(got, []string{"corr-err"}) {
			t.Fatalf("response header %s = %v", grpcapi.MetadataCorrelationID, got)
		}
		if got := serverSpanAttrs(t, span.SpanContext().TraceID()); got["correlation_id"] != "corr-err" {
			t.Fatalf("server span of a failed call: attributes %v, want correlation_id corr-err", got)
		}
	})
}

// serverSpanAttrs waits for the server span of trace id to end and returns its attributes.
func serverSpanAttrs(t *testing.T, id trace.TraceID) map[string]string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, sp := range recordedSpans.Ended() {
			if sp.SpanContext().TraceID() == id && sp.SpanKind() == trace.SpanKindServer {
				attrs := map[string]string{}
				for _, kv := range sp.Attributes() {
					attrs[string(kv.Key)] = kv.Value.Emit()
				}
				return attrs
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no server span of trace %s ended", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// subset returns the entries of m whose keys are in keys.
func subset(m, keys map[string]string) map[string]string {
	out := map[string]string{}
	for k := range keys {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return out
}
