package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a Prometheus registry holding the Go runtime and process collectors.
// Services register their own metrics on it and serve it with ServeMetrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// RegisterOrReuse registers c on reg and returns it or, when reg already holds an identical
// collector (two servers or services in one process sharing a registry, as in tests), returns
// that one. It panics on any other registration error, as MustRegister does.
func RegisterOrReuse[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
		panic("telemetry: register metrics: " + err.Error())
	}
	return c
}

// ServeMetrics listens on addr and serves /metrics (the metrics gathered from reg), /healthz
// (200 "ok": the process is alive) and, when ready is not nil, /readyz (ready's answer) over HTTP. It binds synchronously, so an unusable address (e.g. in use) is returned
// as an error, then serves in a goroutine. The returned server's Addr is the bound address
// (useful with port 0). The server shuts down when ctx is done, or when the caller calls Shutdown.
func ServeMetrics(ctx context.Context, addr string, reg prometheus.Gatherer, ready *Readiness, logger *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	return ServeMetricsListener(ctx, ln, reg, ready, logger), nil
}

// ServeMetricsListener is ServeMetrics on a listener the caller opened.
func ServeMetricsListener(ctx context.Context, ln net.Listener, reg prometheus.Gatherer, ready *Readiness, logger *slog.Logger) *http.Server {
	if logger == nil {
		logger = slog.Default()
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError),
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	if ready != nil {
		mux.Handle("GET /readyz", ready)
	}
	srv := &http.Server{
		Addr:              ln.Addr().String(),
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	go func() {
		logger.Info("metrics server listening", "addr", srv.Addr)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server stopped", "addr", srv.Addr, "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return srv
}
