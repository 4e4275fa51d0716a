package grpcapi

import (
	"context"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/ordersys/ordersys/services/command/internal/app"
)

// Request metadata keys the command service reads (gRPC metadata keys are lower case).
const (
	// MetadataCorrelationID carries the correlation id of the business request. When a call
	// has none (or an unusable one: empty, longer than MaxCorrelationIDLen, not printable
	// ASCII), the service makes a UUID. Either way the id is returned in the response header
	// of the same name and stored in every event the command appends.
	MetadataCorrelationID = "x-correlation-id"
	// MetadataUserID carries the id of the user on whose behalf the command runs, when the
	// service does not authenticate callers itself (ORDERSYS_AUTH_JWKS_FILE unset): a gateway
	// or auth proxy in front of it is then expected to verify the caller and set this key. With
	// authentication on, the token's subject is the user and this key is ignored. The user is
	// stored in every event the command appends, and becomes the cancelled-by of a cancelled
	// order.
	MetadataUserID = "x-user-id"
)

// Limits on the metadata values.
const (
	// MaxCorrelationIDLen bounds an accepted correlation id, in bytes.
	MaxCorrelationIDLen = 128
	// MaxUserIDLen bounds the user id, in characters.
	MaxUserIDLen = 100
)

type metaKey struct{}

// MetadataInterceptor returns the unary server interceptor that reads the caller's correlation
// and user ids from the request metadata, makes a correlation id when there is none, sends it
// back in the response header x-correlation-id, sets it as attribute correlation_id on the
// call's span, and hands both to the handlers through the context (see MetaFromContext). A user id longer than MaxUserIDLen characters or not valid
// UTF-8 fails the call with an *es.ValidationError on "x-user-id".
func MetadataInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		m := app.Meta{CorrelationID: first(ctx, MetadataCorrelationID), UserID: strings.TrimSpace(first(ctx, MetadataUserID))}
		if p, ok := grpcx.PrincipalFromContext(ctx); ok {
			m.UserID = p.Subject // authenticated: the token says who calls, x-user-id is ignored
		}
		if !usableCorrelationID(m.CorrelationID) {
			m.CorrelationID = ids.New()
		}
		// Sent with the response, or with the status when the call fails.
		_ = grpc.SetHeader(ctx, metadata.MD{MetadataCorrelationID: {m.CorrelationID}}) // the key is lower case
		// On the call's server span (otelgrpc's), also when the call fails before the handler;
		// the handler adds aggregate_id, command_id and causation_id (app.Handler.Execute).
		trace.SpanFromContext(ctx).SetAttributes(attribute.String(app.SpanAttrCorrelationID, m.CorrelationID))
		switch {
		case !utf8.ValidString(m.UserID):
			return nil, es.Invalid(MetadataUserID, "metadata must be valid UTF-8")
		case utf8.RuneCountInString(m.UserID) > MaxUserIDLen:
			return nil, es.Invalid(MetadataUserID, "metadata must be at most 100 characters")
		}
		return handler(context.WithValue(ctx, metaKey{}, m), req)
	}
}

// MetaFromContext returns the caller metadata MetadataInterceptor stored in ctx; without the
// interceptor, a fresh correlation id and no user.
func MetaFromContext(ctx context.Context) app.Meta {
	if m, ok := ctx.Value(metaKey{}).(app.Meta); ok {
		return m
	}
	return app.Meta{CorrelationID: ids.New()}
}

// first returns the first value of the incoming metadata key (lower case), without copying the
// whole metadata as metadata.FromIncomingContext does.
func first(ctx context.Context, key string) string {
	if v := metadata.ValueFromIncomingContext(ctx, key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// usableCorrelationID accepts 1 to MaxCorrelationIDLen printable ASCII characters.
func usableCorrelationID(s string) bool {
	if s == "" || len(s) > MaxCorrelationIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
