package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/store"
)

// TestProgressNeverMovesBack: publish_progress was a blind upsert (issue 11, finding 1), so a
// relay that lost its lease and finished a commit late moved an aggregate's progress backwards
// and the next leader published those events again. A lower sequence written after a higher
// one now loses; a row written by an older release (wall-clock timestamp) is still overtaken.
func TestProgressNeverMovesBack(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := store.NewProgress(s)
	load := func(id string) int64 {
		t.Helper()
		seq, err := p.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}

	id := gocql.TimeUUID().String()
	for _, seq := range []int64{5, 3, 4} { // the late writes of 3 and 4 land after 5
		if err := p.Save(ctx, id, seq); err != nil {
			t.Fatal(err)
		}
	}
	if got := load(id); got != 5 {
		t.Fatalf("progress after saving 5, then 3 and 4 late = %d, want 5", got)
	}
	if err := p.Save(ctx, id, 6); err != nil {
		t.Fatal(err)
	}
	if got := load(id); got != 6 {
		t.Fatalf("progress after saving 6 = %d, want 6", got)
	}

	old := gocql.TimeUUID()
	if err := s.Query(`INSERT INTO publish_progress (aggregate_id, sequence, updated_at) VALUES (?, ?, ?)`,
		old, 7, time.Now()).Exec(); err != nil { // as a release without USING TIMESTAMP wrote it
		t.Fatal(err)
	}
	if err := p.Save(ctx, old.String(), 8); err != nil {
		t.Fatal(err)
	}
	if got := load(old.String()); got != 8 {
		t.Fatalf("progress of a row written by an older release, after saving 8 = %d, want 8", got)
	}
	if err := p.Save(ctx, id, 0); err == nil {
		t.Fatal("Save of sequence 0 succeeded")
	}
}
