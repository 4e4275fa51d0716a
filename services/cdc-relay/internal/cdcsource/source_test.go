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
