package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// Logger returns a JSON logger writing to stderr at the given level (debug, info, warn or error;
// anything else means info) whose records carry service=<service> and, when the record's context
// holds a valid span, trace_id and span_id. Log with the *Context methods to get the ids.
func Logger(service, level string) *slog.Logger {
	return NewLogger(os.Stderr, service, level)
}

// NewLogger is Logger writing to w.
func NewLogger(w io.Writer, service, level string) *slog.Logger {
	lvl, err := ParseLevel(level)
	if err != nil {
		lvl = slog.LevelInfo
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl})
	return slog.New(NewTraceHandler(h)).With(slog.String("service", service))
}

// ParseLevel parses a log level name: debug, info, warn (or warning) or error, case-insensitive.
func ParseLevel(s string) (slog.Level, error) {
	if strings.EqualFold(strings.TrimSpace(s), "warning") {
		return slog.LevelWarn, nil
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return slog.LevelInfo, fmt.Errorf("log level %q is not one of debug, info, warn, error", s)
	}
	return l, nil
}

// NewTraceHandler wraps h so that every record whose context holds a valid span gets trace_id
// and span_id attributes.
func NewTraceHandler(h slog.Handler) slog.Handler {
	return traceHandler{h}
}

type traceHandler struct{ inner slog.Handler }

func (h traceHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.inner.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.inner.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.inner.WithGroup(name)}
}
