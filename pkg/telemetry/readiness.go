package telemetry

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"
)

// Readiness is what GET /readyz on the metrics port answers: 503 until a check is set, then
// 200 "ready" while the check passes and 503 with its error while it fails. It is the HTTP twin
// of the gRPC health server's overall status, for probes that cannot speak gRPC over TLS (the
// kubelet's gRPC probe has no TLS).
type Readiness struct {
	check atomic.Pointer[func(context.Context) error]
}

// errStarting is the answer before a check is set.
var errStarting = errors.New("starting")

// Set installs the check (typically the gRPC server's Ready).
func (r *Readiness) Set(check func(context.Context) error) { r.check.Store(&check) }

// Check runs the check, errStarting before one is set.
func (r *Readiness) Check(ctx context.Context) error {
	c := r.check.Load()
	if c == nil {
		return errStarting
	}
	return (*c)(ctx)
}

// ServeHTTP answers /readyz.
func (r *Readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := r.Check(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}
