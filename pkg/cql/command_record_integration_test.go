package cql_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/es"
)

// TestRecordedCommandIDBlocksTheAppend: a rejection of an existing aggregate's command is
// recorded in its stream (the head shows it, reason intact; a copy in command_rejections for
// older releases), and an append carrying that command id is not applied, although the
// aggregate is at the expected version: it fails with a conflict marked CommandRecorded, so a
// writer deciding on a cached state cannot overturn a first outcome it has not read. Nor can a
// rejection overturn a recorded success: it is not written. An append with another id goes
// through.
func TestRecordedCommandIDBlocksTheAppend(t *testing.T) {
	session, _ := cqltest.Keyspace(t)
	st := cql.NewEventStore(session, codec.NewRegistry(), cql.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := uuid.NewString()
	newIDs := func() []string { return []string{uuid.NewString(), uuid.NewString()} }
	firstIDs := newIDs()
	if _, err := st.Append(ctx, faultRequest(id, 0, firstIDs)); err != nil {
		t.Fatal(err)
	}
	rejected := "cmd-rejected"
	rej := cql.Rejection{AggregateID: id, CommandID: rejected, Fingerprint: "fp-r", Code: "order.ship.confirmed",
		Message: "order is CREATED | not CONFIRMED", Version: 2}
	if err := cql.NewRejections(session, time.Hour).Save(ctx, rej); err != nil {
		t.Fatal(err)
	}
	head, err := st.Head(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := es.CommandRecord{Fingerprint: "fp-r", FirstSequence: 2, LastSequence: 2, Rejected: true, Rule: rej.Code, Reason: rej.Message}
	if got := head.Commands[rejected]; got != want {
		t.Fatalf("head records %+v for the rejected command, want %+v", got, want)
	}
	if copied, found, err := cql.NewRejections(session, time.Hour).Find(ctx, id, rejected); err != nil || !found || copied.Message != rej.Message {
		t.Fatalf("rejection of an existing aggregate in command_rejections: %+v %v %v", copied, found, err)
	}
	succeeded := "cmd-" + firstIDs[0] // the creation's command id
	late := rej
	late.CommandID = succeeded
	var recorded *es.ConflictError
	if err := cql.NewRejections(session, time.Hour).Save(ctx, late); !errors.As(err, &recorded) || !recorded.CommandRecorded {
		t.Fatalf("rejection of a command id recorded as a success: %v, want a conflict marked CommandRecorded", err)
	}
	if head, err := st.Head(ctx, id); err != nil || head.Commands[succeeded].Rejected || head.Commands[succeeded].LastSequence != 2 {
		t.Fatalf("success of %s after a late rejection: %+v %v", succeeded, head.Commands[succeeded], err)
	}

	req := faultRequest(id, 2, newIDs())
	req.CommandID = rejected
	_, err = st.Append(ctx, req)
	var ce *es.ConflictError
	if !errors.As(err, &ce) || !ce.CommandRecorded || ce.Actual != 2 {
		t.Fatalf("append under a rejected command id: %v, want a conflict marked CommandRecorded at version 2", err)
	}
	if head, err := st.Head(ctx, id); err != nil || head.Version != 2 {
		t.Fatalf("aggregate at version %d (%v) after the refused append, want 2", head.Version, err)
	}
	if res, err := st.Append(ctx, faultRequest(id, 2, newIDs())); err != nil || res.Version != 4 {
		t.Fatalf("append with a new command id: %+v %v", res, err)
	}
}
