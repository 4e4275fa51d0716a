package cql

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/es"
)

// serverError is a server error frame with a code, as gocql hands them over.
type serverError int

func (e serverError) Code() int       { return int(e) }
func (e serverError) Message() string { return fmt.Sprintf("code %#x", int(e)) }
func (e serverError) Error() string   { return e.Message() }

// TestRefusedOnlyForErrorsThatProveNothingRan is the classification table of
// docs/outbox-protocol.md: only an error proving the batch never ran lets Append drop its intent
// and answer without recovery; every other error is an unknown outcome.
func TestRefusedOnlyForErrorsThatProveNothingRan(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"syntax", serverError(gocql.ErrCodeSyntax), true},
		{"invalid (e.g. batch too large)", fmt.Errorf("commit: %w", serverError(gocql.ErrCodeInvalid)), true},
		{"unauthorized", serverError(gocql.ErrCodeUnauthorized), true},
		{"config", serverError(gocql.ErrCodeConfig), true},
		{"protocol", serverError(gocql.ErrCodeProtocol), true},
		{"too many statements", gocql.ErrTooManyStmts, true},
		{"marshal", gocql.MarshalError{}, true},
		{"write timeout", serverError(gocql.ErrCodeWriteTimeout), false},
		{"cas write unknown", serverError(gocql.ErrCodeCASWriteUnknown), false},
		{"unavailable", serverError(gocql.ErrCodeUnavailable), false},
		{"overloaded", serverError(gocql.ErrCodeOverloaded), false},
		{"server error", serverError(gocql.ErrCodeServer), false},
		{"write failure", serverError(gocql.ErrCodeWriteFailure), false},
		{"client timeout", gocql.ErrTimeoutNoResponse, false},
		{"connection closed", gocql.ErrConnectionClosed, false},
		{"no hosts", gocql.ErrNoConnections, false},
		{"deadline", context.DeadlineExceeded, false},
		{"anything else", errors.New("boom"), false},
		{"nil", nil, false},
	} {
		if got := refused(tc.err); got != tc.want {
			t.Errorf("refused(%s: %v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// TestRefusedErrorKeepsInvalidRequestsApart: a request judged invalid is a bug (Internal at the
// edge); one never sent is the store out of reach (Unavailable).
func TestRefusedErrorKeepsInvalidRequestsApart(t *testing.T) {
	if err := refusedError(serverError(gocql.ErrCodeInvalid)); errors.Is(err, es.ErrUnavailable) {
		t.Errorf("invalid request marked unavailable: %v", err)
	}
	if err := refusedError(gocql.ErrTooManyStmts); errors.Is(err, es.ErrUnavailable) {
		t.Errorf("too many statements marked unavailable: %v", err)
	}
	if err := refusedError(errors.New("no streams available")); !errors.Is(err, es.ErrUnavailable) {
		t.Errorf("a request never sent for want of a connection not marked unavailable: %v", err)
	}
}
