package cql_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/es"
)

// requestErr is a server error frame with a code, as gocql returns them.
type requestErr struct{ code int }

func (e requestErr) Code() int       { return e.code }
func (e requestErr) Message() string { return "from the server" }
func (e requestErr) Error() string   { return fmt.Sprintf("server error %#x", e.code) }

// TestUnreachable: a failure to reach the database or get its answer is unreachable; a refusal
// of the statement, the ordersys sentinels, context errors and anything else are not.
func TestUnreachable(t *testing.T) {
	cases := []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"nil", nil, false},
		{"no connections", fmt.Errorf("read order: %w", gocql.ErrNoConnections), true},
		{"session closed", gocql.ErrSessionClosed, true},
		{"client timeout", gocql.ErrTimeoutNoResponse, true},
		{"server unavailable", requestErr{gocql.ErrCodeUnavailable}, true},
		{"server read timeout", fmt.Errorf("list: %w", requestErr{gocql.ErrCodeReadTimeout}), true},
		{"server overloaded", requestErr{gocql.ErrCodeOverloaded}, true},
		{"syntax error", requestErr{gocql.ErrCodeSyntax}, false},
		{"network", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{"not found", fmt.Errorf("order: %w", es.ErrNotFound), false},
		{"bad token", es.Invalid("page_token", "is corrupt"), false},
		{"canceled", context.Canceled, false},
		{"corrupt row", errors.New("order x: unknown order status \"LOST\""), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := cql.Unreachable(tc.err); got != tc.unavailable {
				t.Fatalf("Unreachable(%v) = %v, want %v", tc.err, got, tc.unavailable)
			}
		})
	}
}

// TestUnavailableIn is the one rule by which a failed driver call reaches the edge: every
// error of the driver, a statement the server refuses included, is es.ErrUnavailable (the
// client may retry; a projector worker retries instead of dead-lettering an event over a
// missing grant or table), and so is a context error of the driver while the caller's context
// is live; an error already marked unavailable and the caller's own context errors are left as
// they are.
func TestUnavailableIn(t *testing.T) {
	live := context.Background()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name        string
		ctx         context.Context
		err         error
		unavailable bool
	}{
		{"nil", live, nil, false},
		{"no connections", live, fmt.Errorf("read order: %w", gocql.ErrNoConnections), true},
		{"server read timeout", live, requestErr{gocql.ErrCodeReadTimeout}, true},
		{"syntax error", live, requestErr{gocql.ErrCodeSyntax}, true},
		{"unauthorized", live, requestErr{gocql.ErrCodeUnauthorized}, true},
		{"unconfigured table", live, requestErr{gocql.ErrCodeInvalid}, true},
		{"network", live, &net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{"driver canceled, caller live", live, context.Canceled, true},
		{"caller canceled", ended, context.Canceled, false},
		{"caller deadline", ended, fmt.Errorf("read: %w", context.DeadlineExceeded), false},
		{"already unavailable", live, fmt.Errorf("x: %w", es.ErrUnavailable), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := cql.UnavailableIn(tc.ctx, tc.err)
			if is := errors.Is(got, es.ErrUnavailable); is != tc.unavailable {
				t.Fatalf("UnavailableIn(%v) = %v: unavailable %v, want %v", tc.err, got, is, tc.unavailable)
			}
			if tc.err != nil && !errors.Is(got, tc.err) && !errors.Is(tc.err, context.Canceled) {
				t.Fatalf("UnavailableIn(%v) = %v: the cause is lost", tc.err, got)
			}
		})
	}
}
