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
