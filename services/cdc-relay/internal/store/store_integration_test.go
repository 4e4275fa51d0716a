package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/store"
)

// TestProgressNeverMovesBack: publish_progress was a blind upsert (issue 11, finding 1), so a
// relay that lost its lease and finished a commit late moved an aggregate's progress backwards
// and the next leader published those events again. A lower sequence written after a higher
// one now loses, with write timestamps ScyllaDB accepts (its fix, 2^53-based timestamps, is
// refused by ScyllaDB's restrict_future_timestamp); rows an earlier release wrote still count.
func TestProgressNeverMovesBack(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := store.NewProgress(s)
	load := func(id string) int64 {
		t.Helper()
		seqs, err := p.Load(ctx, []string{id})
		if err != nil {
			t.Fatal(err)
		}
		return seqs[id]
	}
	saveSeq := func(id string, seq int64) error { return p.Save(ctx, map[string]int64{id: seq}) }

	uid := gocql.TimeUUID()
	id := uid.String()
	for _, seq := range []int64{5, 3, 4} { // the late writes of 3 and 4 land after 5
		if err := saveSeq(id, seq); err != nil {
			t.Fatal(err)
		}
	}
	if got := load(id); got != 5 {
		t.Fatalf("progress after saving 5, then 3 and 4 late = %d, want 5", got)
	}
	if err := saveSeq(id, 6); err != nil {
		t.Fatal(err)
	}
	if got := load(id); got != 6 {
		t.Fatalf("progress after saving 6 = %d, want 6", got)
	}

	var wt int64
	if err := s.Query(`SELECT writetime(published_at) FROM published_sequences WHERE aggregate_id = ? LIMIT 1`, uid).Scan(&wt); err != nil {
		t.Fatal(err)
	}
	if limit := time.Now().Add(72 * time.Hour).UnixMicro(); wt > limit {
		t.Fatalf("write timestamp %d is more than three days ahead (%d): ScyllaDB refuses it", wt, limit)
	}

	// Rows an earlier release wrote into publish_progress (wall-clock or 2^53-based write
	// timestamps) still count: a relay started while they exist reads both tables.
	old, both := gocql.TimeUUID(), gocql.TimeUUID()
	for _, r := range []struct {
		id  gocql.UUID
		seq int64
		ts  int64
	}{{old, 7, time.Now().UnixMicro()}, {both, 9, 1<<53 + 9}} {
		if err := s.Query(`INSERT INTO publish_progress (aggregate_id, sequence, updated_at) VALUES (?, ?, ?) USING TIMESTAMP ?`,
			r.id, r.seq, time.Now(), r.ts).Exec(); err != nil {
			t.Fatal(err)
		}
	}
	p = store.NewProgress(s)
	if got := load(old.String()); got != 7 {
		t.Fatalf("progress written by an earlier release = %d, want 7", got)
	}
	if err := saveSeq(old.String(), 8); err != nil {
		t.Fatal(err)
	}
	if got := load(old.String()); got != 8 {
		t.Fatalf("progress of a row written by an older release, after saving 8 = %d, want 8", got)
	}
	if err := saveSeq(both.String(), 4); err != nil { // a late save below the earlier release's
		t.Fatal(err)
	}
	if got := load(both.String()); got != 9 {
		t.Fatalf("progress after a late save of 4 below the earlier release's 9 = %d, want 9", got)
	}
	if err := saveSeq(id, 0); err == nil {
		t.Fatal("Save of sequence 0 succeeded")
	}
}

// TestProgressOfManyAggregatesAtOnce: the relay loads and saves the progress of many aggregates
// in few queries (an IN list per 100 aggregates, an unlogged batch per 10); every aggregate
// gets its own sequence back, an aggregate never saved reads 0, and a batch of late, lower
// sequences moves none back.
func TestProgressOfManyAggregatesAtOnce(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := store.NewProgress(s)
	want := map[string]int64{}
	for i := range 250 {
		want[gocql.TimeUUID().String()] = int64(i%7 + 2)
	}
	if err := p.Save(ctx, want); err != nil {
		t.Fatal(err)
	}
	late := map[string]int64{}
	for id := range want {
		late[id] = 1
	}
	if err := p.Save(ctx, late); err != nil {
		t.Fatal(err)
	}
	never := gocql.TimeUUID().String()
	ids := []string{never}
	for id := range want {
		ids = append(ids, id)
	}
	got, err := p.Load(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for id, seq := range want {
		if got[id] != seq {
			t.Errorf("progress of %s = %d, want %d", id, got[id], seq)
		}
	}
	if seq, read := got[never]; !read || seq != 0 {
		t.Errorf("progress of an aggregate never saved = %d (read: %v), want 0, read", seq, read)
	}

	// One aggregate spelt two ways: each spelling reads it, a save takes the greater sequence.
	lower := gocql.TimeUUID().String()
	upper := strings.ToUpper(lower)
	if err := p.Save(ctx, map[string]int64{lower: 9, upper: 4}); err != nil {
		t.Fatal(err)
	}
	if got, err := p.Load(ctx, []string{lower, upper}); err != nil || got[lower] != 9 || got[upper] != 9 {
		t.Fatalf("progress of one aggregate spelt two ways: %v %v, want 9 for both", got, err)
	}
}

// TestCheckpointNeverMovesBack saves checkpoints the way a relay paused past its lease does:
// its earlier position lands after the new owner saved a later one. The later position stays,
// within a bucket and across buckets; no write timestamp is ahead of the clock (ScyllaDB refuses
// USING TIMESTAMP more than three days ahead); a row written by a release with wall-clock write
// timestamps is replaced once the cursor passes the time it was written, and an operator's plain
// DELETE resets a cursor.
func TestCheckpointNeverMovesBack(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cps := store.NewCheckpoints(s)
	load := func(name string) store.Checkpoint {
		t.Helper()
		cp, ok, err := cps.Load(ctx, name, 3)
		if err != nil || !ok {
			t.Fatalf("load checkpoint %s: found %v, %v", name, ok, err)
		}
		return store.Checkpoint{Bucket: cp.Bucket, LastID: cp.LastID}
	}
	save := func(name string, cp store.Checkpoint) {
		t.Helper()
		if err := cps.Save(ctx, name, 3, cp); err != nil {
			t.Fatal(err)
		}
	}
	b := cql.Bucket(time.Now()) - 10 // positions ten minutes behind, as a cursor catching up
	at := func(bucket int64, d time.Duration) gocql.UUID {
		return gocql.UUIDFromTime(cql.BucketStart(bucket).Add(d))
	}
	early, late := store.Checkpoint{Bucket: b, LastID: at(b, 10*time.Second)}, store.Checkpoint{Bucket: b, LastID: at(b, 20*time.Second)}
	next := store.Checkpoint{Bucket: b + 1}
	skewed := store.Checkpoint{Bucket: b + 1, LastID: at(b+1, -5*time.Second)} // a writer clock 5 s behind
	ahead := store.Checkpoint{Bucket: b + 1, LastID: at(b+1, 70*time.Second)}  // a writer clock 10 s ahead

	steps := []struct {
		save store.Checkpoint
		want store.Checkpoint
	}{
		{late, late},
		{early, late},    // the paused relay's earlier id in the same bucket
		{next, next},     // the next bucket, no id read yet
		{late, next},     // the paused relay's previous bucket
		{skewed, skewed}, // an id from before its bucket's start is still after "none"
		{next, skewed},
		{ahead, ahead},
		{skewed, ahead}, // an id from after its bucket's end is still in its bucket
		{store.Checkpoint{Bucket: b + 2}, store.Checkpoint{Bucket: b + 2}},
		{ahead, store.Checkpoint{Bucket: b + 2}},
	}
	for i, st := range steps {
		save("fast", st.save)
		if got := load("fast"); got != st.want {
			t.Fatalf("step %d: after saving %+v the checkpoint is %+v, want %+v", i, st.save, got, st.want)
		}
	}
	var wt int64
	if err := s.Query(`SELECT writetime(bucket) FROM relay_checkpoints WHERE name = 'fast' AND shard = 3`).Scan(&wt); err != nil {
		t.Fatal(err)
	}
	if limit := time.Now().Add(72 * time.Hour).UnixMicro(); wt > limit {
		t.Fatalf("write timestamp %d is more than three days ahead (%d): ScyllaDB refuses it", wt, limit)
	}

	// A release that wrote wall-clock timestamps saved b+5 at the end of that minute.
	written, oldID := cql.BucketStart(b+6).UnixMicro(), at(b+5, time.Second)
	if err := s.Query(`INSERT INTO relay_checkpoints (name, shard, bucket, last_id, updated_at) VALUES ('old', 3, ?, ?, ?) USING TIMESTAMP ?`,
		b+5, oldID, time.Now(), written).Exec(); err != nil {
		t.Fatal(err)
	}
	save("old", store.Checkpoint{Bucket: b + 5, LastID: at(b+5, 30*time.Second)}) // before it was written
	if got := load("old"); got.LastID != oldID {
		t.Fatalf("an older position replaced the row written after it: %+v", got)
	}
	passed := store.Checkpoint{Bucket: b + 6, LastID: at(b+6, time.Second)}
	save("old", passed)
	if got := load("old"); got != passed {
		t.Fatalf("checkpoint of a row written by an older release, after the cursor passed it = %+v, want %+v", got, passed)
	}

	if err := s.Query(`DELETE FROM relay_checkpoints WHERE name = 'fast' AND shard = 3`).Exec(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := cps.Load(ctx, "fast", 3); err != nil || ok {
		t.Fatalf("after an operator's DELETE: found %v, %v; want no checkpoint (the cursor starts over)", ok, err)
	}
	if err := cps.Save(ctx, "fast", 3, store.Checkpoint{Bucket: -1}); err == nil {
		t.Fatal("Save of bucket -1 succeeded")
	}
}
