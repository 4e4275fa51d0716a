package cql_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/grpcx"
)

// TestDriverContextErrorsAreUnavailable: gocql reports a connection closed under a call as
// context.Canceled; while the caller's context is live that is the store failing (Unavailable,
// retryable), not the caller giving up, which stays a context error.
func TestDriverContextErrorsAreUnavailable(t *testing.T) {
	driver := fmt.Errorf("write intent: %w (potentially executed: true)", context.Canceled)
	if err := cql.UnavailableIn(context.Background(), driver); !errors.Is(err, es.ErrUnavailable) || errors.Is(err, context.Canceled) {
		t.Fatalf("live caller: %v, want es.ErrUnavailable and no context error (the edge maps those first)", err)
	}
	if st := grpcx.ToStatus(cql.UnavailableIn(context.Background(), driver)); status.Code(st) != codes.Unavailable {
		t.Fatalf("at the edge: %v, want Unavailable", st)
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if err := cql.UnavailableIn(gone, driver); errors.Is(err, es.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v, want context.Canceled alone", err)
	}
	if err := cql.UnavailableIn(context.Background(), errors.New("no hosts")); !errors.Is(err, es.ErrUnavailable) {
		t.Fatalf("other error: %v", err)
	}
}
