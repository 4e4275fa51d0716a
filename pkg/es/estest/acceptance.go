// Package estest holds the acceptance suite every es.EventStore implementation must pass.
// Implementations run it from their own tests against a real backend, building the store with
// the registry the suite hands them (it knows the suite's own event types, see tally.go; the
// suite depends on no domain):
//
//	estest.AcceptanceTest(t, func(t *testing.T, reg *es.Registry) es.EventStore { return newStore(t, reg) })
package estest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordersys/ordersys/pkg/es"
)

// AcceptanceTest runs the suite. newStore must return a store that encodes, decodes and upcasts
// payloads with reg (the registry of the suite's event types) on storage that holds none of
// the aggregates the suite makes (each subtest uses fresh aggregate ids, so storage may be
// shared between subtests).
func AcceptanceTest(t *testing.T, newStore func(t *testing.T, reg *es.Registry) es.EventStore) {
	run := func(name string, test func(*testing.T, es.EventStore)) {
		t.Run(name, func(t *testing.T) { test(t, newStore(t, newRegistry())) })
	}
	run("CreateLoadRoundTrip", testCreateLoad)
	run("MissingAggregate", testMissing)
	run("OptimisticConcurrency", testConflicts)
	run("ConcurrentWritersOneWins", testConcurrentWriters)
	run("PagedLoadAndRanges", testPaging)
	run("CommandRecords", testCommands)
	run("ForgetCommands", testForgetCommands)
	run("Snapshots", testSnapshots)
	run("UpcastOnLoad", testUpcast)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func lines(n int) []line {
	out := make([]line, n)
	for i := range out {
		out[i] = line{SKU: uuid.NewString(), Quantity: int32(i + 1), PriceCents: int64(100 * (i + 1))}
	}
	return out
}

// envelopes wraps events for aggregate id starting after version.
func envelopes(id string, version int64, evs ...es.Event) []es.Envelope {
	a := newTally(id)
	a.SetVersion(version)
	return es.NewEnvelopes(a, evs, es.Metadata{
		CausationID: uuid.NewString(), CorrelationID: "corr-" + id[:8], UserID: "user-1",
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "k=v",
		Extra: map[string]string{"source": "estest"},
	}, time.Now().Truncate(time.Millisecond), uuid.NewString)
}

func created(id string) es.Event {
	ls := lines(2)
	return opened{TallyID: id, Owner: uuid.NewString(), Lines: ls, Total: total(ls)}
}

func updated(n int) es.Event {
	ls := lines(n%5 + 1)
	return linesSet{Lines: ls, Total: total(ls), Reason: fmt.Sprintf("update %d", n)}
}

func appendReq(id string, expected int64, envs []es.Envelope) es.AppendRequest {
	return es.AppendRequest{AggregateID: id, AggregateType: tallyType, ExpectedVersion: expected, Events: envs}
}

func loadAll(t *testing.T, st es.EventStore, id string, from int64) ([]es.Envelope, es.StreamHead) {
	t.Helper()
	var out []es.Envelope
	head, err := st.Load(ctx(t), id, from, func(e es.Envelope) error { out = append(out, e); return nil })
	if err != nil {
		t.Fatalf("load %s from %d: %v", id, from, err)
	}
	return out, head
}

func testCreateLoad(t *testing.T, st es.EventStore) {
	id := uuid.NewString()
	envs := envelopes(id, 0, created(id), checked{})
	res, err := st.Append(ctx(t), appendReq(id, 0, envs))
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 2 || len(res.EventIDs) != 2 || res.EventIDs[0] != envs[0].EventID {
		t.Fatalf("result %+v", res)
	}
	got, head := loadAll(t, st, id, 1)
	if head.Version != 2 || len(got) != 2 {
		t.Fatalf("head %+v, %d events", head, len(got))
	}
	// Load returns the fields a replay reads, LoadRange every field.
	whole, err := st.LoadRange(ctx(t), id, 1, 2)
	if err != nil || len(whole) != 2 {
		t.Fatalf("load range: %d events, %v", len(whole), err)
	}
	for i := range envs {
		want, w := envs[i], whole[i]
		w.Payload, want.Payload = nil, nil
		if !reflect.DeepEqual(w, want) {
			t.Errorf("event %d from LoadRange:\n got %+v\nwant %+v", i, w, want)
		}
		g := got[i]
		want = es.Folded(want)
		g.Payload = nil
		if !reflect.DeepEqual(g, want) {
			t.Errorf("event %d from Load:\n got %+v\nwant %+v (es.Folded)", i, g, want)
		}
	}
	last, lastHead, err := st.LoadLast(ctx(t), id, 5)
	if err != nil || lastHead.Version != 2 || !reflect.DeepEqual(last, got) {
		t.Errorf("LoadLast of 5: %+v, head %+v, %v; want what Load returns, %+v", last, lastHead, err, got)
	}
	a := newTally(id)
	if err := es.Replay(a, got); err != nil {
		t.Fatalf("replay the loaded events: %v", err)
	}
	if a.Version() != 2 || a.total != envs[0].Event.(opened).Total || a.checks != 1 {
		t.Fatalf("replayed tally %+v", a)
	}
	if ok, err := st.Exists(ctx(t), id); err != nil || !ok {
		t.Fatalf("exists: %v %v", ok, err)
	}
	if h, err := st.Head(ctx(t), id); err != nil || h.Version != 2 {
		t.Fatalf("head: %+v %v", h, err)
	}
}

func testMissing(t *testing.T, st es.EventStore) {
	id := uuid.NewString()
	got, head := loadAll(t, st, id, 1)
	if len(got) != 0 || head.Version != 0 {
		t.Fatalf("missing aggregate: %d events, head %+v", len(got), head)
	}
	if _, head = loadAll(t, st, id, 7); head.Version != 0 {
		t.Fatalf("missing aggregate from 7: head %+v", head)
	}
	if last, head, err := st.LoadLast(ctx(t), id, 10); err != nil || len(last) != 0 || head.Version != 0 {
		t.Fatalf("missing aggregate's last 10: %d events, head %+v, %v", len(last), head, err)
	}
	if ok, err := st.Exists(ctx(t), id); err != nil || ok {
		t.Fatalf("exists: %v %v", ok, err)
	}
	if _, err := st.LatestSnapshot(ctx(t), id, 0); !errors.Is(err, es.ErrNotFound) {
		t.Fatalf("snapshot of missing aggregate: %v", err)
	}
}

func testConflicts(t *testing.T, st es.EventStore) {
	id := uuid.NewString()
	if _, err := st.Append(ctx(t), appendReq(id, 0, envelopes(id, 0, created(id)))); err != nil {
		t.Fatal(err)
	}
	// creating again is refused
	_, err := st.Append(ctx(t), appendReq(id, 0, envelopes(id, 0, created(id))))
	if !errors.Is(err, es.ErrAlreadyExists) {
		t.Fatalf("second create: %v", err)
	}
	// a stale expected version is refused and reports the actual version
	if _, err := st.Append(ctx(t), appendReq(id, 1, envelopes(id, 1, updated(1)))); err != nil {
		t.Fatal(err)
	}
	_, err = st.Append(ctx(t), appendReq(id, 1, envelopes(id, 1, updated(2))))
	var ce *es.ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, es.ErrConcurrencyConflict) || ce.Expected != 1 || ce.Actual != 2 {
		t.Fatalf("stale append: %v (%+v)", err, ce)
	}
	// an expected version in the future is refused too
	if _, err = st.Append(ctx(t), appendReq(id, 5, envelopes(id, 5, updated(3)))); !errors.Is(err, es.ErrConcurrencyConflict) {
		t.Fatalf("future append: %v", err)
	}
	got, head := loadAll(t, st, id, 1)
	if len(got) != 2 || head.Version != 2 {
		t.Fatalf("after conflicts: %d events, head %+v", len(got), head)
	}
}

func testConcurrentWriters(t *testing.T, st es.EventStore) {
	id := uuid.NewString()
	if _, err := st.Append(ctx(t), appendReq(id, 0, envelopes(id, 0, created(id)))); err != nil {
		t.Fatal(err)
	}
	const writers = 8
	var wg sync.WaitGroup
	wins := make(chan es.AppendRequest, writers)
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			req := appendReq(id, 1, envelopes(id, 1, updated(w), checked{}))
			_, err := st.Append(ctx(t), req)
			switch {
			case err == nil:
				wins <- req
			case errors.Is(err, es.ErrConcurrencyConflict):
			default:
				errs <- err
			}
		}(w)
	}
	wg.Wait()
	close(wins)
	close(errs)
	for err := range errs {
		t.Errorf("writer: %v", err)
	}
	var won []es.AppendRequest
	for r := range wins {
		won = append(won, r)
	}
	if len(won) != 1 {
		t.Fatalf("%d writers won at the same version, want exactly 1", len(won))
	}
	head, err := st.Head(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.LoadRange(ctx(t), id, 1, 3)
	if err != nil || head.Version != 3 || len(got) != 3 || got[1].EventID != won[0].Events[0].EventID || got[2].EventID != won[0].Events[1].EventID {
		t.Fatalf("stream does not hold the winner's events: head %+v, %d events, %v", head, len(got), err)
	}
}

func testPaging(t *testing.T, st es.EventStore) {
	id := uuid.NewString()
	const batches, per = 12, 100 // 1200 events: more than two pages of any sane page size
	var version int64
	for b := 0; b < batches; b++ {
		var evs []es.Event
		if b == 0 {
			evs = append(evs, created(id))
		}
		for len(evs) < per {
			evs = append(evs, updated(len(evs)))
		}
		res, err := st.Append(ctx(t), appendReq(id, version, envelopes(id, version, evs...)))
		if err != nil {
			t.Fatalf("batch %d: %v", b, err)
		}
		version = res.Version
	}
	got, head := loadAll(t, st, id, 1)
	if head.Version != batches*per || len(got) != batches*per {
		t.Fatalf("head %+v, %d events", head, len(got))
	}
	for i, e := range got {
		if e.Sequence != int64(i+1) {
			t.Fatalf("event %d has sequence %d", i, e.Sequence)
		}
	}
	tail, head := loadAll(t, st, id, 1150)
	if len(tail) != 51 || tail[0].Sequence != 1150 || head.Version != 1200 {
		t.Fatalf("tail from 1150: %d events, head %+v", len(tail), head)
	}
	if none, head := loadAll(t, st, id, 1201); len(none) != 0 || head.Version != 1200 {
		t.Fatalf("from past the end: %d events, head %+v", len(none), head)
	}
	for _, n := range []int{1, 60, batches * per, 2000} {
		last, head, err := st.LoadLast(ctx(t), id, n)
		want := min(n, batches*per)
		if err != nil || len(last) != want || head.Version != batches*per {
			t.Fatalf("last %d: %d events, head %+v, %v", n, len(last), head, err)
		}
		for i, e := range last {
			if want := int64(batches*per - want + i + 1); e.Sequence != want || e.Event == nil {
				t.Fatalf("last %d: event %d has sequence %d (decoded: %v), want %d", n, i, e.Sequence, e.Event != nil, want)
			}
		}
	}
	r, err := st.LoadRange(ctx(t), id, 10, 19)
	if err != nil || len(r) != 10 || r[0].Sequence != 10 || r[9].Sequence != 19 {
		t.Fatalf("range 10..19: %d events, %v", len(r), err)
	}
}

// testCommands: an append records its command id (fingerprint and sequences) with the events,
// and a later append under the same id is not applied.
func testCommands(t *testing.T, st es.EventStore) {
	id := uuid.NewString()
	cmd := uuid.NewString()
	req := appendReq(id, 0, envelopes(id, 0, created(id), checked{}))
	req.CommandID, req.CommandFingerprint = cmd, "fp-1"
	if _, err := st.Append(ctx(t), req); err != nil {
		t.Fatal(err)
	}
	h, err := st.Head(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	want := es.CommandRecord{Fingerprint: "fp-1", FirstSequence: 1, LastSequence: 2}
	if got := h.Commands[cmd]; got != want {
		t.Fatalf("command record %+v, want %+v", got, want)
	}
	_, head := loadAll(t, st, id, 1)
	if head.Commands[cmd] != want {
		t.Fatalf("load head record %+v", head.Commands[cmd])
	}
	// The same command id again, at the current version (a writer that decided it without
	// seeing the record): not applied, reported as recorded.
	again := appendReq(id, 2, envelopes(id, 2, updated(1)))
	again.CommandID, again.CommandFingerprint = cmd, "fp-1"
	_, err = st.Append(ctx(t), again)
	var ce *es.ConflictError
	if !errors.As(err, &ce) || !ce.CommandRecorded {
		t.Fatalf("append under a recorded command id: %v, want a *ConflictError with CommandRecorded", err)
	}
	if h, err := st.Head(ctx(t), id); err != nil || h.Version != 2 {
		t.Fatalf("version %d (%v) after the refused append, want 2", h.Version, err)
	}
}

// testForgetCommands: an append drops the recorded command ids it names, atomically with the
// new record, and leaves the others.
func testForgetCommands(t *testing.T, st es.EventStore) {
	id := uuid.NewString()
	first, second, third := uuid.NewString(), uuid.NewString(), uuid.NewString()
	req := appendReq(id, 0, envelopes(id, 0, created(id)))
	req.CommandID, req.CommandFingerprint = first, "fp-1"
	if _, err := st.Append(ctx(t), req); err != nil {
		t.Fatal(err)
	}
	req = appendReq(id, 1, envelopes(id, 1, checked{}))
	req.CommandID, req.CommandFingerprint = second, "fp-2"
	if _, err := st.Append(ctx(t), req); err != nil {
		t.Fatal(err)
	}
	req = appendReq(id, 2, envelopes(id, 2, checked{}))
	req.CommandID, req.CommandFingerprint, req.ForgetCommands = third, "fp-3", []string{first}
	if _, err := st.Append(ctx(t), req); err != nil {
		t.Fatal(err)
	}
	h, err := st.Head(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h.Commands[first]; ok || len(h.Commands) != 2 {
		t.Fatalf("after forgetting %s: %v", first, h.Commands)
	}
	want := es.CommandRecord{Fingerprint: "fp-3", FirstSequence: 3, LastSequence: 3}
	if h.Commands[third] != want || h.Commands[second].Fingerprint != "fp-2" {
		t.Fatalf("records %v, want %s and %s kept", h.Commands, second, third)
	}
}

func testSnapshots(t *testing.T, st es.EventStore) {
	id := uuid.NewString()
	for v := int64(100); v <= 500; v += 100 {
		s := es.Snapshot{AggregateID: id, AggregateType: tallyType, Version: v, SchemaVersion: 1,
			State: []byte(fmt.Sprintf("state-%d", v)), TakenAt: time.Now().UTC().Truncate(time.Millisecond)}
		if err := st.SaveSnapshot(ctx(t), s); err != nil {
			t.Fatal(err)
		}
	}
	s, err := st.LatestSnapshot(ctx(t), id, 0)
	if err != nil || s.Version != 500 || string(s.State) != "state-500" || s.AggregateType != tallyType {
		t.Fatalf("latest: %+v %v", s, err)
	}
	if s, err = st.LatestSnapshot(ctx(t), id, 450); err != nil || s.Version != 400 {
		t.Fatalf("latest ≤ 450: %+v %v", s, err)
	}
}

func testUpcast(t *testing.T, st es.EventStore) {
	id := uuid.NewString()
	ls := lines(3)
	// An opening written by the first schema version, which held the lines as "items" and had
	// no total.
	payload, err := json.Marshal(openedV1{TallyID: id, Owner: uuid.NewString(), Items: ls})
	if err != nil {
		t.Fatal(err)
	}
	envs := envelopes(id, 0, created(id))
	envs[0].Payload, envs[0].SchemaVersion = payload, 1
	if _, err := st.Append(ctx(t), appendReq(id, 0, envs)); err != nil {
		t.Fatal(err)
	}
	got, _ := loadAll(t, st, id, 1)
	if len(got) != 1 || got[0].SchemaVersion != 1 {
		t.Fatalf("loaded %+v", got)
	}
	ev, ok := got[0].Event.(opened)
	if want := total(ls); !ok || ev.Total != want || !reflect.DeepEqual(ev.Lines, ls) {
		t.Fatalf("v1 %s loaded as %#v, want total %d and lines %v", eventOpened, got[0].Event, want, ls)
	}
}
