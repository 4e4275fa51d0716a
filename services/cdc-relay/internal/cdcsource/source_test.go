package cdcsource

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"
	scyllacdc "github.com/scylladb/scylla-cdc-go"

	"github.com/ordersys/ordersys/services/cdc-relay/internal/relay"
)

// These tests run without ScyllaDB (none can run here): they check what the source hands to
// scylla-cdc-go and what it does with the changes the library hands back.

// TestConfidenceWindowIsTheLibrarysAndABackstopTrailsIt is deliver 5 of issue 11: the main
// reader's confidence window defaults to scylla-cdc-go's own (30 s), not the poller's 250 ms, and a
// second reader with its own positions trails it by the rescan lag.
func TestConfidenceWindowIsTheLibrarysAndABackstopTrailsIt(t *testing.T) {
	s := New(Config{Keyspace: "ks"}, nil, nil, nil)
	rs := s.readers()
	if len(rs) != 2 {
		t.Fatalf("readers %+v, want the main one and the backstop", rs)
	}
	main := s.readerConfig(rs[0], nil, nil)
	back := s.readerConfig(rs[1], nil, nil)
	if w := main.Advanced.ConfidenceWindowSize; w < 30*time.Second {
		t.Errorf("main confidence window %s, below scylla-cdc-go's default 30s", w)
	}
	if got, want := back.Advanced.ConfidenceWindowSize, main.Advanced.ConfidenceWindowSize+DefaultRescanLag; got != want {
		t.Errorf("backstop confidence window %s, want %s", got, want)
	}
	if rs[0].application == rs[1].application {
		t.Errorf("both readers keep their positions under %q: the backstop would skip what the main reader passed", rs[0].application)
	}
	if rs[0].cursor != MainCursor || rs[1].cursor != RescanCursor {
		t.Errorf("cursors %q, %q", rs[0].cursor, rs[1].cursor)
	}
	for _, c := range []*scyllacdc.ReaderConfig{main, back} {
		if len(c.TableNames) != 1 || c.TableNames[0] != "ks.outbox_messages" || c.Advanced.ChangeAgeLimit != 24*time.Hour {
			t.Errorf("reader config %+v", c)
		}
	}

	// An explicit larger window is kept; a negative rescan lag disables the backstop.
	s = New(Config{Keyspace: "ks", ConfidenceWindow: time.Minute, RescanLag: -1}, nil, nil, nil)
	if rs := s.readers(); len(rs) != 1 || rs[0].window != time.Minute {
		t.Errorf("readers %+v, want only the main one with a 1m window", rs)
	}
}

// recordingSink settles every change at once as published and records it.
type recordingSink struct {
	mu  sync.Mutex
	got map[string][]int64 // cursor → sequences handed over
}

func (r *recordingSink) Submit(_ context.Context, c *relay.Change) error {
	r.mu.Lock()
	if r.got == nil {
		r.got = map[string][]int64{}
	}
	r.got[c.Cursor] = append(r.got[c.Cursor], c.Sequence)
	r.mu.Unlock()
	c.OnDone(relay.Published)
	return nil
}

// TestBackstopHandsOverAChangeTheMainReaderPassed: the main reader has moved past a change's
// cdc$time (an empty window) before the change became visible; the backstop, reading later, hands
// it over under its own cursor, and each reader's settled position moves only with its own
// changes.
func TestBackstopHandsOverAChangeTheMainReaderPassed(t *testing.T) {
	s := New(Config{Keyspace: "ks"}, nil, nil, nil)
	sink := &recordingSink{}
	newConsumer := func(cursor string) *consumer {
		f := &factory{src: s, sink: sink, cursor: cursor, consumers: map[*consumer]struct{}{}}
		return &consumer{f: f, stream: "s1"}
	}
	mainC, backC := newConsumer(MainCursor), newConsumer(RescanCursor)
	agg := gocql.TimeUUID()
	base := time.Now().Add(-2 * time.Minute)
	t1, tLate, t3 := gocql.UUIDFromTime(base), gocql.UUIDFromTime(base.Add(time.Second)), gocql.UUIDFromTime(base.Add(2*time.Second))
	change := func(at gocql.UUID, seq int64) Rows {
		return Rows{Time: at, Delta: []Row{outboxRow(scyllacdc.Insert, gocql.UUIDFromTime(at.Time()), agg, seq, []byte{1})}}
	}
	ctx := context.Background()

	// Main reader: change 1, then nothing up to t3 (change 2, at tLate, not visible yet).
	if err := mainC.consume(ctx, change(t1, 1)); err != nil {
		t.Fatal(err)
	}
	if err := mainC.Empty(ctx, t3); err != nil {
		t.Fatal(err)
	}
	// Backstop, later: both changes.
	for _, r := range []Rows{change(t1, 1), change(tLate, 2)} {
		if err := backC.consume(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if got := sink.got[MainCursor]; len(got) != 1 || got[0] != 1 {
		t.Errorf("main reader handed over %v", got)
	}
	if got := sink.got[RescanCursor]; len(got) != 2 || got[1] != 2 {
		t.Errorf("backstop handed over %v, want the late change 2 too", got)
	}
	if mainC.settled != t3 || backC.settled != tLate {
		t.Errorf("settled positions main %v backstop %v, want %v and %v", mainC.settled.Time(), backC.settled.Time(), t3.Time(), tLate.Time())
	}
}

// holdingSink keeps every change handed over unsettled until the test settles it.
type holdingSink struct {
	mu   sync.Mutex
	held []*relay.Change
}

func (h *holdingSink) Submit(_ context.Context, c *relay.Change) error {
	h.mu.Lock()
	h.held = append(h.held, c)
	h.mu.Unlock()
	return nil
}

func (h *holdingSink) settle(i int) {
	h.mu.Lock()
	c := h.held[i]
	h.mu.Unlock()
	c.OnDone(relay.Published)
}

// savedPositions records the positions a consumer saves.
type savedPositions struct {
	mu  sync.Mutex
	got []gocql.UUID
}

func (s *savedPositions) MarkProgress(_ context.Context, p scyllacdc.Progress) error {
	s.mu.Lock()
	s.got = append(s.got, p.LastProcessedRecordTime)
	s.mu.Unlock()
	return nil
}

func (s *savedPositions) last() gocql.UUID {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) == 0 {
		return gocql.UUID{}
	}
	return s.got[len(s.got)-1]
}

// TestEndWaitsForTheStreamsChangesToSettle: the library ends a stream's consumer at the end of
// a CDC generation and then moves the reader to the next generation for good. End used to save
// what was settled and return at once, so changes still in the pipeline (a broker outage) were
// never read again if the run then stopped: events committed and never published. Now End
// waits until they are settled; if the run ends first, it fails, which keeps the library from
// starting the next generation, and the saved position stays before the unsettled change.
func TestEndWaitsForTheStreamsChangesToSettle(t *testing.T) {
	s := New(Config{Keyspace: "ks"}, nil, nil, nil)
	agg := gocql.TimeUUID()
	base := time.Now().Add(-2 * time.Minute)
	times := []gocql.UUID{{}, gocql.UUIDFromTime(base.Add(time.Second)), gocql.UUIDFromTime(base.Add(2 * time.Second))}
	at := func(k int) gocql.UUID { return times[k] }
	change := func(k int) Rows {
		return Rows{Time: at(k), Delta: []Row{outboxRow(scyllacdc.Insert, at(k), agg, int64(k), []byte{1})}}
	}
	newConsumer := func(run context.Context) (*consumer, *holdingSink, *savedPositions) {
		sink, saved := &holdingSink{}, &savedPositions{}
		f := &factory{src: s, sink: sink, cursor: MainCursor, run: run, consumers: map[*consumer]struct{}{}}
		return &consumer{f: f, lib: context.Background(), reporter: saved, stream: "s1"}, sink, saved
	}
	notYet := func(ended <-chan error, what string) {
		t.Helper()
		select {
		case err := <-ended:
			t.Fatalf("End returned (%v) %s", err, what)
		case <-time.After(100 * time.Millisecond):
		}
	}

	run, stop := context.WithCancel(context.Background())
	defer stop()
	c, sink, saved := newConsumer(run)
	for k := 1; k <= 2; k++ {
		if err := c.consume(context.Background(), change(k)); err != nil {
			t.Fatal(err)
		}
	}
	ended := make(chan error, 1)
	go func() { ended <- c.End() }()
	notYet(ended, "with two changes unsettled")
	sink.settle(0)
	notYet(ended, "with one change unsettled")
	sink.settle(1)
	select {
	case err := <-ended:
		if err != nil || saved.last() != at(2) {
			t.Fatalf("End: %v, saved position %v; want nil and %v", err, saved.last().Time(), at(2).Time())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("End did not return once every change was settled")
	}

	// The run ends with the second change unsettled.
	run2, stop2 := context.WithCancel(context.Background())
	c, sink, saved = newConsumer(run2)
	for k := 1; k <= 2; k++ {
		if err := c.consume(context.Background(), change(k)); err != nil {
			t.Fatal(err)
		}
	}
	sink.settle(0)
	go func() { ended <- c.End() }()
	notYet(ended, "with a change unsettled")
	stop2()
	select {
	case err := <-ended:
		if err == nil || saved.last() != at(1) {
			t.Fatalf("End: %v, saved position %v; want an error and %v", err, saved.last().Time(), at(1).Time())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("End did not return once the run ended")
	}
}

// blockingSink takes no change: Submit waits until its context ends (a pipeline full of
// changes it cannot publish).
type blockingSink struct{}

func (blockingSink) Submit(ctx context.Context, _ *relay.Change) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestEndDoesNotWaitForAChangeNeverHandedOver: a stream's Consume is blocked handing a change
// over (the pipeline is full) when another reader of the generation fails, which ends the
// library's context: Consume returns, and End, called next, must return an error at once (found
// in review: it waited for that change to settle, which it never would, while the library waited
// for End: the reader hung until the run ended).
func TestEndDoesNotWaitForAChangeNeverHandedOver(t *testing.T) {
	s := New(Config{Keyspace: "ks"}, nil, nil, nil)
	lib, fail := context.WithCancel(context.Background())
	f := &factory{src: s, sink: blockingSink{}, cursor: MainCursor, run: context.Background(), consumers: map[*consumer]struct{}{}}
	c := &consumer{f: f, lib: lib, reporter: &savedPositions{}, stream: "s1"}
	at := gocql.UUIDFromTime(time.Now().Add(-time.Minute))
	consumed := make(chan error, 1)
	go func() {
		consumed <- c.consume(lib, Rows{Time: at, Delta: []Row{outboxRow(scyllacdc.Insert, at, gocql.TimeUUID(), 1, []byte{1})}})
	}()
	time.Sleep(50 * time.Millisecond)
	fail()
	if err := <-consumed; err == nil {
		t.Fatal("consume handed the change over to a sink that takes none")
	}
	ended := make(chan error, 1)
	go func() { ended <- c.End() }()
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("End reported every change settled")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("End still waiting 5 s after the library's context ended, for a change never handed over")
	}
}
