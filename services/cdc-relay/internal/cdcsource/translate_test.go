package cdcsource

import (
	"testing"
	"time"

	"github.com/gocql/gocql"
	scyllacdc "github.com/scylladb/scylla-cdc-go"
)

// fakeRow stands in for *scyllacdc.ChangeRow, with values in the library's representation:
// scalars as pointers, blobs as byte slices.
type fakeRow struct {
	op   scyllacdc.OperationType
	vals map[string]any
}

func (r fakeRow) GetOperation() scyllacdc.OperationType { return r.op }
func (r fakeRow) GetValue(col string) (any, bool)       { v, ok := r.vals[col]; return v, ok }

func ptr[T any](v T) *T { return &v }

func outboxRow(op scyllacdc.OperationType, id gocql.UUID, agg gocql.UUID, seq int64, env []byte) fakeRow {
	ev := gocql.TimeUUID()
	return fakeRow{op: op, vals: map[string]any{
		"bucket": ptr(int64(1)), "shard": ptr(3), "id": ptr(id),
		"aggregate_id": ptr(agg), "aggregate_type": ptr("Order"), "sequence": ptr(seq),
		"event_id": ptr(ev), "event_type": ptr("OrderCreated"), "schema_version": ptr(2),
		"topic": ptr("order-events"), "partition_key": ptr(agg.String()), "envelope": env,
		"correlation_id": ptr("c"), "causation_id": ptr("k"), "traceparent": ptr(""),
		"created_at": ptr(time.Now()),
	}}
}

func TestTranslateInsertDeltas(t *testing.T) {
	agg := gocql.TimeUUID()
	cdcTime := gocql.TimeUUID()
	id1 := gocql.UUIDFromTime(time.Now().Add(-time.Second))
	id2 := gocql.UUIDFromTime(time.Now().Add(-time.Second + time.Millisecond))
	rows := Rows{Time: cdcTime, Delta: []Row{
		outboxRow(scyllacdc.Insert, id1, agg, 1, []byte("env-1")),
		outboxRow(scyllacdc.Insert, id2, agg, 2, []byte("env-2")),
	}}
	got, skipped := Translate(rows)
	if skipped != 0 || len(got) != 2 {
		t.Fatalf("Translate = %d changes, %d skipped; want 2, 0", len(got), skipped)
	}
	for i, c := range got {
		if c.AggregateID != agg.String() || c.AggregateType != "Order" || c.Sequence != int64(i+1) ||
			c.Topic != "order-events" || string(c.Envelope) != []string{"env-1", "env-2"}[i] || c.EventID == "" {
			t.Errorf("change %d = %+v", i, c)
		}
	}
	if !got[0].CommittedAt.Equal(id1.Time()) {
		t.Errorf("CommittedAt = %v, want the row id's time %v", got[0].CommittedAt, id1.Time())
	}
}

func TestTranslatePrefersPostImageAndSkipsDeletes(t *testing.T) {
	agg := gocql.TimeUUID()
	id := gocql.TimeUUID()
	partial := fakeRow{op: scyllacdc.Update, vals: map[string]any{"id": ptr(id), "sequence": ptr(int64(7))}}
	full := outboxRow(scyllacdc.PostImage, id, agg, 7, []byte("env-7"))
	got, skipped := Translate(Rows{Time: gocql.TimeUUID(), Delta: []Row{partial}, PostImage: []Row{full}})
	if skipped != 0 || len(got) != 1 || string(got[0].Envelope) != "env-7" || got[0].AggregateID != agg.String() {
		t.Fatalf("postimage: got %+v skipped %d", got, skipped)
	}

	del := fakeRow{op: scyllacdc.RowDelete, vals: map[string]any{"id": ptr(id)}}
	pdel := fakeRow{op: scyllacdc.PartitionDelete, vals: map[string]any{}}
	got, skipped = Translate(Rows{Time: gocql.TimeUUID(), Delta: []Row{del, pdel}})
	if len(got) != 0 || skipped != 2 {
		t.Fatalf("deletes: got %d changes, %d skipped; want 0, 2", len(got), skipped)
	}
}

// TestTranslateKeepsIncompleteRows checks that a row lacking columns is still handed over (the
// pipeline dead-letters it) rather than dropped.
func TestTranslateKeepsIncompleteRows(t *testing.T) {
	cdcTime := gocql.TimeUUID()
	row := fakeRow{op: scyllacdc.Insert, vals: map[string]any{
		"aggregate_id": (*gocql.UUID)(nil), "sequence": (*int64)(nil), "envelope": []byte(nil)}}
	got, skipped := Translate(Rows{Time: cdcTime, Delta: []Row{row}})
	if len(got) != 1 || skipped != 0 {
		t.Fatalf("got %d changes, %d skipped; want 1, 0", len(got), skipped)
	}
	c := got[0]
	if c.AggregateID != "" || c.Sequence != 0 || c.Envelope != nil || !c.CommittedAt.Equal(cdcTime.Time()) {
		t.Fatalf("incomplete row translated to %+v", c)
	}
}

func TestConsumerAdvancesOnlyOverSettledChanges(t *testing.T) {
	c := &consumer{}
	t1, t2, t3 := gocql.TimeUUID(), gocql.TimeUUID(), gocql.TimeUUID()
	m1 := &cmark{t: t1, remaining: 1}
	m2 := &cmark{t: t2, remaining: 2}
	c.q = []*cmark{m1, m2}
	c.advance()
	if c.settled != (gocql.UUID{}) {
		t.Fatalf("settled moved to %v with nothing settled", c.settled)
	}
	m2.remaining = 0
	c.advance()
	if c.settled != (gocql.UUID{}) {
		t.Fatalf("settled moved past an unsettled change")
	}
	m1.remaining = 0
	c.q = append(c.q, &cmark{t: t3}) // empty notification
	c.advance()
	if c.settled != t3 || len(c.q) != 0 {
		t.Fatalf("settled = %v (queue %d), want %v", c.settled, len(c.q), t3)
	}
}
