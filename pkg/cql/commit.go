package cql

import (
	"context"
	"errors"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/es"
)

// refused reports whether err proves that a request was never executed, so that a conditional
// write that returned it certainly did not apply: the driver says it never sent it, the server
// rejected it before executing it (syntax, invalid, unauthorized, configuration, protocol,
// credentials), or the driver could not build it. Every other error (a timeout, a lost
// connection, CAS_WRITE_UNKNOWN, a write timeout, unavailable, overloaded, a server error, a
// cancelled context after sending) leaves the outcome unknown: the write may still commit.
// See the table in docs/outbox-protocol.md.
func refused(err error) bool {
	if err == nil {
		return false
	}
	var qe *gocql.QueryError
	if errors.As(err, &qe) && !qe.PotentiallyExecuted() {
		return true
	}
	var re gocql.RequestError
	if errors.As(err, &re) {
		switch re.Code() {
		case gocql.ErrCodeSyntax, gocql.ErrCodeUnauthorized, gocql.ErrCodeInvalid, gocql.ErrCodeConfig,
			gocql.ErrCodeProtocol, gocql.ErrCodeCredentials:
			return true
		}
		return false
	}
	return driverRejected(err)
}

// driverRejected reports whether the driver could not build the request: a value that does not
// marshal, too many statements in a batch, or the wrong number of arguments.
func driverRejected(err error) bool {
	var me gocql.MarshalError
	return errors.As(err, &me) || errors.Is(err, gocql.ErrTooManyStmts) || errors.Is(err, gocql.ErrQueryArgLength)
}

// invalid reports whether err says the request is invalid as it is, so that sending it again
// can never succeed: the server's Syntax, Invalid or Config error, or the driver's marshal and
// statement errors. (A request merely not sent, or refused for want of rights, may succeed later.)
func invalid(err error) bool {
	var re gocql.RequestError
	if errors.As(err, &re) {
		switch re.Code() {
		case gocql.ErrCodeSyntax, gocql.ErrCodeInvalid, gocql.ErrCodeConfig:
			return true
		}
		return false
	}
	return driverRejected(err)
}

// refusedError is the error Append returns for a refused batch: a request the server or the
// driver judged invalid as it is (a bug: Internal at the edge), else (never sent: no stream, no
// connection) marked Unavailable, as the store could not be reached.
func refusedError(err error) error {
	var re gocql.RequestError
	if errors.As(err, &re) || driverRejected(err) {
		return err
	}
	return Unavailable(err)
}

// commit issues the conditional batch. It reports whether it applied and, when not, the
// version found and whether the request's command id was found recorded (a later append's
// condition also requires the id to be unrecorded); an error means the outcome is unknown.
func (st *EventStore) commit(ctx context.Context, req es.AppendRequest) (applied bool, actual int64, recorded bool, err error) {
	aggID, _ := gocql.ParseUUID(req.AggregateID)
	newVersion := req.ExpectedVersion + int64(len(req.Events))
	b := st.s.Batch(gocql.LoggedBatch).WithContext(ctx)
	for i, e := range req.Events {
		if i == 0 && req.ExpectedVersion == 0 {
			b.Query(insertFirstEvent, eventArgs(aggID, e, req.AggregateType, newVersion)...)
			continue
		}
		b.Query(insertEvent, eventArgs(aggID, e)...)
	}
	switch {
	case req.ExpectedVersion > 0 && req.CommandID != "":
		// The id may have been recorded since the writer looked (by another replica, or as a
		// rejection): then the first outcome stands and these events must not commit.
		b.Query(`UPDATE event_store SET version = ? WHERE aggregate_id = ? IF version = ? AND commands[?] = null`,
			newVersion, aggID, req.ExpectedVersion, req.CommandID)
	case req.ExpectedVersion > 0:
		b.Query(`UPDATE event_store SET version = ? WHERE aggregate_id = ? IF version = ?`, newVersion, aggID, req.ExpectedVersion)
	}
	if req.CommandID != "" {
		b.Query(`UPDATE event_store USING TTL ? SET commands[?] = ? WHERE aggregate_id = ?`,
			int(st.opts.CommandTTL/time.Second), req.CommandID,
			commandValue(req.CommandFingerprint, req.ExpectedVersion+1, newVersion), aggID)
	}
	if len(req.ForgetCommands) > 0 {
		// Other keys than the one set above (a recorded id is never recorded again), so the
		// removal and the addition in one batch do not shadow each other.
		b.Query(`UPDATE event_store SET commands = commands - ? WHERE aggregate_id = ?`, req.ForgetCommands, aggID)
	}
	applied, actual, m, err := executeOnStream(st.s, b)
	if err != nil {
		return false, 0, false, err
	}
	if cmds, ok := m["commands"].(map[string]string); ok && req.CommandID != "" {
		_, recorded = cmds[req.CommandID]
	}
	return applied, actual, recorded, nil
}

// executeOnStream runs a conditional batch on one aggregate's event_store partition and
// returns whether it applied and, when not, the version found (-1 when none was returned)
// with the other current values the server returned.
func executeOnStream(s *gocql.Session, b *gocql.Batch) (applied bool, actual int64, current map[string]any, err error) {
	current = map[string]any{}
	applied, iter, err := s.MapExecuteBatchCAS(b, current)
	if iter != nil {
		_ = iter.Close()
	}
	actual = -1
	if v, ok := current["version"].(int64); ok {
		actual = v
	}
	return applied, actual, current, err
}

// ownsSequences reads, at SERIAL consistency (which settles any Paxos round already accepted),
// whether the events at the request's sequences are the request's own.
func (st *EventStore) ownsSequences(ctx context.Context, req es.AppendRequest) (bool, error) {
	holder, err := st.holder(ctx, req)
	return err == nil && holder == req.Events[0].EventID, err
}

// holder reads at SERIAL consistency the id of the event at the request's first sequence ("" when
// there is none).
func (st *EventStore) holder(ctx context.Context, req es.AppendRequest) (string, error) {
	aggID, _ := gocql.ParseUUID(req.AggregateID)
	var id gocql.UUID
	err := st.s.Query(`SELECT event_id FROM event_store WHERE aggregate_id = ? AND sequence = ?`, aggID, req.Events[0].Sequence).
		WithContext(ctx).Consistency(gocql.Serial).Scan(&id)
	if errors.Is(err, gocql.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return id.String(), nil
}
