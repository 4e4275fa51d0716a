package cql

import (
	"context"
	"errors"
	"net"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/es"
)

// Unreachable reports whether err is a failure to reach or get an answer from the database
// (and not already classified).
func Unreachable(err error) bool {
	for _, sentinel := range []error{es.ErrUnavailable, es.ErrNotFound, es.ErrInvalidArgument, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, sentinel) {
			return false
		}
	}
	for _, down := range []error{
		gocql.ErrNoConnections, gocql.ErrConnectionClosed, gocql.ErrTimeoutNoResponse, gocql.ErrTooManyTimeouts,
		gocql.ErrNoStreams, gocql.ErrHostDown, gocql.ErrNoPool, gocql.ErrNoConnectionsInPool, gocql.ErrSessionClosed,
		gocql.ErrSessionNotReady, gocql.ErrUnavailable, gocql.ErrKeyspaceDoesNotExist,
	} {
		if errors.Is(err, down) {
			return true
		}
	}
	var re gocql.RequestError
	if errors.As(err, &re) {
		switch re.Code() {
		case gocql.ErrCodeUnavailable, gocql.ErrCodeOverloaded, gocql.ErrCodeBootstrapping,
			gocql.ErrCodeReadTimeout, gocql.ErrCodeWriteTimeout, gocql.ErrCodeReadFailure:
			return true
		}
		return false
	}
	var ne net.Error
	return errors.As(err, &ne)
}
