package cql_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
)

// TestAppendAnswersBeforeItsOutboxRows: Append returns once the conditional batch committed,
// while the outbox rows are still to be written (held here until Append has returned; an
// Append that wrote them first would never return); Close waits for them, after which the rows
// are there and the intent is gone.
func TestAppendAnswersBeforeItsOutboxRows(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	returned := make(chan struct{})
	st := cql.NewEventStore(s, codec.NewRegistry(), cql.Options{Hook: func(step cql.Step) {
		if step == cql.StepOutboxBuilt {
			<-returned
		}
	}})
	id := uuid.NewString()
	done := make(chan error, 1)
	go func() {
		_, err := st.Append(ctx, faultRequest(id, 0, newIDs(2)))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		close(returned)
		t.Fatal("Append did not answer before its outbox rows were written")
	}
	if n := countIntents(t, s, id); n != 1 {
		t.Fatalf("intents right after the answer: %d, want 1 (the finish still to come)", n)
	}
	close(returned)
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countIntents(t, s, id); n != 0 {
		t.Fatalf("intents after Close: %d, want 0", n)
	}
	checkNoLossNoPhantom(t, s)
}
