package cdcsource

import (
	"fmt"
	"time"

	"github.com/gocql/gocql"
	scyllacdc "github.com/scylladb/scylla-cdc-go"

	"github.com/ordersys/ordersys/services/cdc-relay/internal/relay"
)

// Row is the part of a CDC log row the translation reads. *scyllacdc.ChangeRow implements it;
// tests use their own rows because the library's cannot be built outside it.
type Row interface {
	GetOperation() scyllacdc.OperationType
	GetValue(column string) (interface{}, bool)
}

// Rows is one CDC change (rows of one stream with one cdc$time) as the translation sees it.
type Rows struct {
	// Time is cdc$time.
	Time gocql.UUID
	// Delta and PostImage are the change's delta and postimage rows.
	Delta, PostImage []Row
}

// FromChange wraps a library change.
func FromChange(c scyllacdc.Change) Rows {
	r := Rows{Time: c.Time}
	for _, d := range c.Delta {
		r.Delta = append(r.Delta, d)
	}
	for _, p := range c.PostImage {
		r.PostImage = append(r.PostImage, p)
	}
	return r
}

// Translate turns the rows of one CDC change of outbox_messages into relay changes, one per
// inserted (or updated) outbox row, in batch order. The postimage, which holds the whole row,
// is preferred when the table has it enabled; otherwise the delta rows are used (outbox rows
// are written whole by INSERT). Deletions and range tombstones (expiry does not produce any) are
// not events: skipped reports how many rows were left out for that reason. A row that lacks
// columns is still translated, with what it has: the pipeline sends it to the dead-letter path
// instead of losing it.
func Translate(c Rows) (changes []*relay.Change, skipped int) {
	rows := c.PostImage
	if len(rows) == 0 {
		rows = c.Delta
	} else {
		// Postimage rows carry no operation of the write: count the deltas that were not writes.
		for _, d := range c.Delta {
			if !isWrite(d.GetOperation()) {
				skipped++
			}
		}
	}
	committed := c.Time.Time()
	for _, r := range rows {
		op := r.GetOperation()
		if op != scyllacdc.PostImage && !isWrite(op) {
			skipped++
			continue
		}
		ch := &relay.Change{Cursor: "scylla-cdc", CommittedAt: committed}
		ch.AggregateID = uuidString(r, "aggregate_id")
		ch.AggregateType = text(r, "aggregate_type")
		ch.Sequence = bigint(r, "sequence")
		ch.EventID = uuidString(r, "event_id")
		ch.Topic = text(r, "topic")
		ch.Envelope = blob(r, "envelope")
		if id, ok := uuidValue(r, "id"); ok {
			ch.CommittedAt, ch.RowID = id.Time(), id
		}
		changes = append(changes, ch)
	}
	return changes, skipped
}

func isWrite(op scyllacdc.OperationType) bool {
	return op == scyllacdc.Insert || op == scyllacdc.Update
}

func uuidValue(r Row, col string) (gocql.UUID, bool) {
	v, _ := r.GetValue(col)
	switch x := v.(type) {
	case *gocql.UUID:
		if x != nil {
			return *x, true
		}
	case gocql.UUID:
		return x, true
	}
	return gocql.UUID{}, false
}

func uuidString(r Row, col string) string {
	if u, ok := uuidValue(r, col); ok {
		return u.String()
	}
	return ""
}

func text(r Row, col string) string {
	v, _ := r.GetValue(col)
	switch x := v.(type) {
	case *string:
		if x != nil {
			return *x
		}
	case string:
		return x
	}
	return ""
}

func bigint(r Row, col string) int64 {
	v, _ := r.GetValue(col)
	switch x := v.(type) {
	case *int64:
		if x != nil {
			return *x
		}
	case int64:
		return x
	case *int:
		if x != nil {
			return int64(*x)
		}
	}
	return 0
}

func blob(r Row, col string) []byte {
	v, _ := r.GetValue(col)
	switch x := v.(type) {
	case []byte:
		return x
	case *[]byte:
		if x != nil {
			return *x
		}
	}
	return nil
}

// describe renders a change for logs.
func describe(c *relay.Change) string {
	return fmt.Sprintf("%s#%d (event %s, committed %s)", c.AggregateID, c.Sequence, c.EventID, c.CommittedAt.Format(time.RFC3339Nano))
}
