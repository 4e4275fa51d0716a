package storage_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/services/query/internal/storage"
)

// requestErr is a server error frame with a code, as gocql returns them.
type requestErr struct{ code int }

func (e requestErr) Code() int       { return e.code }
func (e requestErr) Message() string { return "from the server" }
func (e requestErr) Error() string   { return fmt.Sprintf("server error %#x", e.code) }

func TestClassify(t *testing.T) {
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
			got := storage.Classify(tc.err)
			if errors.Is(got, es.ErrUnavailable) != tc.unavailable {
				t.Fatalf("Classify(%v) = %v; unavailable %v, want %v", tc.err, got, !tc.unavailable, tc.unavailable)
			}
			if tc.err != nil && !errors.Is(got, tc.err) {
				t.Fatalf("Classify(%v) = %v lost the cause", tc.err, got)
			}
			if tc.err == nil && got != nil {
				t.Fatalf("Classify(nil) = %v", got)
			}
		})
	}
}
