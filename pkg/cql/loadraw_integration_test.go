package cql_test

import (
	"bytes"
	"context"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/es"
)

// LoadRaw returns exactly the asked range, payloads as stored and undecoded (the relay forwards
// bytes); LoadRange decodes the same range.
func TestLoadRawReturnsStoredBytesOfARange(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	st := cql.NewEventStore(s, codec.NewRegistry(), cql.Options{PageSize: 2})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := uuid.NewString()
	req := faultRequest(id, 0, newIDs(2))
	if _, err := st.Append(ctx, req); err != nil {
		t.Fatal(err)
	}
	req2 := faultRequest(id, 2, newIDs(2))
	if _, err := st.Append(ctx, req2); err != nil {
		t.Fatal(err)
	}
	stored := append(req.Events, req2.Events...)

	raw, err := st.LoadRaw(ctx, id, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 2 || raw[0].Sequence != 2 || raw[1].Sequence != 3 {
		t.Fatalf("LoadRaw(2,3) returned %d events", len(raw))
	}
	for i, e := range raw {
		want := stored[i+1]
		if e.Event != nil || !bytes.Equal(e.Payload, want.Payload) || e.EventID != want.EventID || e.EventType != want.EventType ||
			e.SchemaVersion != want.SchemaVersion || e.CorrelationID != want.CorrelationID || e.AggregateType != want.AggregateType {
			t.Errorf("raw event %d differs from what was stored: %+v", i, e)
		}
	}
	if none, err := st.LoadRaw(ctx, id, 3, 2); err != nil || len(none) != 0 {
		t.Fatalf("empty range: %d events, %v", len(none), err)
	}
	dec, err := st.LoadRange(ctx, id, 2, 4)
	if err != nil || len(dec) != 3 || dec[2].Sequence != 4 || dec[0].Event == nil {
		t.Fatalf("LoadRange(2,4): %d events, %v", len(dec), err)
	}
}

// TestLongStreamsLoadWholeAcrossPages: a stream of many pages is read whole and in order, with
// every field of every row, whatever the range's start and with or without an upper bound; the
// head (version, commands) is the stream's.
func TestLongStreamsLoadWholeAcrossPages(t *testing.T) {
	ctx, st, id, stored, cmds := longStream(t, 160)
	same := func(what string, got []es.Envelope, from int64) {
		t.Helper()
		for i, e := range got {
			want := stored[int(from)-1+i]
			if what == "Load" { // the fields a replay reads; the rest must be left empty
				if !reflect.DeepEqual(e, es.Folded(e)) {
					t.Fatalf("Load: event %d carries more than es.Folded: %+v", from+int64(i), e)
				}
				want = es.Folded(want)
			}
			if e.Sequence != want.Sequence || e.EventID != want.EventID || e.EventType != want.EventType || e.AggregateID != id ||
				e.AggregateType != want.AggregateType || !bytes.Equal(e.Payload, want.Payload) || e.CausationID != want.CausationID ||
				e.CorrelationID != want.CorrelationID || e.SchemaVersion != want.SchemaVersion || !e.OccurredAt.Equal(want.OccurredAt.Truncate(time.Millisecond)) {
				t.Fatalf("%s: event %d is %+v, want %+v", what, from+int64(i), e, want)
			}
		}
	}
	for _, from := range []int64{1, 2, 64, 65, 66, 100, 160} {
		var got []es.Envelope
		head, err := st.Load(ctx, id, from, func(e es.Envelope) error { got = append(got, e); return nil })
		if err != nil || len(got) != int(160-from+1) || head.Version != 160 || len(head.Commands) != len(cmds) {
			t.Fatalf("Load from %d: %d events, head version %d with %d commands, %v; want %d events, version 160, %d commands",
				from, len(got), head.Version, len(head.Commands), err, 160-from+1, len(cmds))
		}
		same("Load", got, from)
	}
	for _, r := range [][2]int64{{1, 64}, {1, 65}, {60, 70}, {64, 160}, {65, 200}, {150, 160}} {
		got, err := st.LoadRaw(ctx, id, r[0], r[1])
		if want := min(r[1], 160) - r[0] + 1; err != nil || int64(len(got)) != want {
			t.Fatalf("LoadRaw(%d, %d): %d events, %v; want %d", r[0], r[1], len(got), err, want)
		}
		same("LoadRaw", got, r[0])
	}
}

// TestLoadStopsAtItsHead: events appended while a long stream is being loaded are not half
// read. The rows a load returns end at the version of the head it returns, so the state it
// rebuilds and the head (the version an append expects, the command ids it remembers) agree.
// Before, the head came with the first page and the later pages read on into the new events.
func TestLoadStopsAtItsHead(t *testing.T) {
	ctx, st, id, _, _ := longStream(t, 40)
	var got []int64
	head, err := st.Load(ctx, id, 1, func(e es.Envelope) error {
		got = append(got, e.Sequence)
		if len(got) == 1 { // another writer appends while the first page is being read
			h, err := st.Head(ctx, id)
			if err != nil {
				return err
			}
			_, err = st.Append(ctx, faultRequest(id, h.Version, newIDs(2)))
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if last := got[len(got)-1]; int64(len(got)) != last || last != head.Version || last != 40 {
		t.Fatalf("read %d events up to %d with a head at version %d, want 40 and 40: the rows and the head must agree",
			len(got), last, head.Version)
	}
}

// longStream appends n events (n/2 appends of 2, each with a command id) to a new order in a
// store that reads pages of 7 rows, and returns them with the command ids.
func longStream(t *testing.T, n int64) (context.Context, *cql.EventStore, string, []es.Envelope, []string) {
	s, _ := cqltest.Keyspace(t)
	st := cql.NewEventStore(s, codec.NewRegistry(), cql.Options{PageSize: 7})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	id := uuid.NewString()
	var stored []es.Envelope
	var cmds []string
	for v := int64(0); v < n; v += 2 {
		req := faultRequest(id, v, newIDs(2))
		if _, err := st.Append(ctx, req); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, req.Events...)
		cmds = append(cmds, req.CommandID)
	}
	return ctx, st, id, stored, cmds
}

// loaders are the two ways of reading a stream's events with its head: Load from the first
// event, and LoadLast of its last 10; each returns the sequences read.
var loaders = map[string]func(ctx context.Context, st *cql.EventStore, id string) ([]es.Envelope, es.StreamHead, error){
	"Load": func(ctx context.Context, st *cql.EventStore, id string) ([]es.Envelope, es.StreamHead, error) {
		var got []es.Envelope
		head, err := st.Load(ctx, id, 1, func(e es.Envelope) error { got = append(got, e); return nil })
		return got, head, err
	},
	"LoadLast": func(ctx context.Context, st *cql.EventStore, id string) ([]es.Envelope, es.StreamHead, error) {
		return st.LoadLast(ctx, id, 10)
	},
}

// TestLoadRereadsRowsItsHeadCounts: a load reads its rows and the stream's head side by side.
// When an append lands after the rows were read and before the head is (forced here: the head
// is read only once an append has landed), the rows the head counts are read once more, so the
// state rebuilt and the head agree. Without the re-read Load returned 40 events with a head at
// 42.
func TestLoadRereadsRowsItsHeadCounts(t *testing.T) {
	for name, load := range loaders {
		t.Run(name, func(t *testing.T) {
			s, _ := cqltest.Keyspace(t)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var (
				armed   atomic.Bool
				hookErr error
				st      *cql.EventStore
			)
			id := uuid.NewString()
			// One page holds the whole stream, so the rows are all read before the append.
			st = cql.NewEventStore(s, codec.NewRegistry(), cql.Options{Hook: func(step cql.Step) {
				if step != cql.StepLoadHead || !armed.CompareAndSwap(true, false) {
					return
				}
				time.Sleep(300 * time.Millisecond) // the rows' first page is read meanwhile
				_, hookErr = st.Append(ctx, faultRequest(id, 40, newIDs(2)))
			}})
			for v := int64(0); v < 40; v += 2 {
				if _, err := st.Append(ctx, faultRequest(id, v, newIDs(2))); err != nil {
					t.Fatal(err)
				}
			}
			armed.Store(true)
			got, head, err := load(ctx, st, id)
			if err != nil || hookErr != nil {
				t.Fatal(err, hookErr)
			}
			if n := len(got); n == 0 || got[n-1].Sequence != 42 || head.Version != 42 || got[n-1].Sequence-got[0].Sequence != int64(n-1) {
				t.Fatalf("read %d events with a head at version %d, want them to end at 42 and the head at 42", n, head.Version)
			}
		})
	}
}

// TestLoadRacingCreationAgrees: loads that race the first append of a stream return either
// nothing with an empty head, or the events with their head and the aggregate's type, never
// the events with an empty head (found in review: the head read before the append, the rows
// after it).
func TestLoadRacingCreationAgrees(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	st := cql.NewEventStore(s, codec.NewRegistry(), cql.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for name, load := range loaders {
		for range 30 {
			id := uuid.NewString()
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := st.Append(ctx, faultRequest(id, 0, newIDs(2))); err != nil {
					t.Error(err)
				}
			}()
			for range 20 {
				got, head, err := load(ctx, st, id)
				if err != nil {
					t.Fatal(err)
				}
				if int64(len(got)) != head.Version || (len(got) > 0 && (got[0].AggregateType == "" || len(head.Commands) != 1)) {
					t.Fatalf("%s during creation: %d events (%+v) with head %+v", name, len(got), got, head)
				}
				if len(got) > 0 {
					break
				}
			}
			wg.Wait()
		}
	}
}
