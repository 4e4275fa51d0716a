package cql_test

import (
	"context"
	"sync"
	"sync/atomic"
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

// TestConcurrentAppendsFinishTogether: the outbox rows of appends committed while the
// background writers were busy go to the store together (far fewer outbox batches than
// appends), and still every committed event gets its row and every intent is deleted.
func TestConcurrentAppendsFinishTogether(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const writers, each = 30, 10
	answered := make(chan struct{})
	var batches atomic.Int32
	st := cql.NewEventStore(s, codec.NewRegistry(), cql.Options{Finishers: 2 * writers * each, Hook: func(step cql.Step) {
		if step == cql.StepOutboxBuilt {
			batches.Add(1)
			<-answered // the first workers wait until every append has been answered
		}
	}})
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	var ids []string
	for range writers * each {
		ids = append(ids, uuid.NewString())
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, id := range ids[w*each : (w+1)*each] {
				if _, err := st.Append(ctx, faultRequest(id, 0, newIDs(2))); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	close(answered)
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}
	events := checkNoLossNoPhantom(t, s)
	if len(events) != 2*writers*each {
		t.Fatalf("%d events committed, want %d", len(events), 2*writers*each)
	}
	appends := int32(writers * each)
	t.Logf("%d appends finished in %d outbox batches", appends, batches.Load())
	if batches.Load() > appends/4 {
		t.Fatalf("%d outbox batches for %d appends: their rows were not written together", batches.Load(), appends)
	}
}
