package cql

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/es"
)

// DeadLetter is a message that can never be published as it is.
type DeadLetter struct {
	// Topic is the topic the message was meant for; ID identifies the record in that topic.
	Topic string
	ID    gocql.UUID
	// AggregateID, Sequence, EventID and EventType describe the event (zero when unknown).
	AggregateID string
	Sequence    int64
	EventID     string
	EventType   string
	// Reason says why it could not be published.
	Reason string
	// Envelope holds the bytes as found (the protobuf EventEnvelope when it decodes).
	Envelope []byte
	// CreatedAt is when it was dead-lettered; RedrivenAt when it was last re-driven (zero: never).
	CreatedAt, RedrivenAt time.Time
}

// DeadLetters reads and writes the dead_letters table, where the cdc-relay (topic <topic>) and
// the projector (topic <topic>.projector.dlq) record what they could not publish or apply.
type DeadLetters struct{ s *gocql.Session }

// NewDeadLetters returns the dead-letter store on the session's keyspace.
func NewDeadLetters(s *gocql.Session) *DeadLetters { return &DeadLetters{s: s} }

func uuidOrNil(s string) any {
	if u, err := gocql.ParseUUID(s); err == nil {
		return u
	}
	return nil
}

// Put records a dead letter under its ID (a zero ID is filled with a new time UUID), replacing
// one recorded under it.
func (d *DeadLetters) Put(ctx context.Context, dl *DeadLetter) error {
	if dl.ID == (gocql.UUID{}) {
		dl.ID = gocql.TimeUUID()
	}
	if dl.CreatedAt.IsZero() {
		dl.CreatedAt = time.Now().UTC()
	}
	if err := d.s.Query(`INSERT INTO dead_letters (topic, id, aggregate_id, sequence, event_id, event_type, reason, envelope, created_at)
 VALUES (?,?,?,?,?,?,?,?,?)`, dl.Topic, dl.ID, uuidOrNil(dl.AggregateID), dl.Sequence, uuidOrNil(dl.EventID), dl.EventType,
		dl.Reason, dl.Envelope, dl.CreatedAt).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("record dead letter for %s: %w", dl.Topic, UnavailableIn(ctx, err))
	}
	return nil
}

// Exists reports whether a dead letter is recorded under id for topic.
func (d *DeadLetters) Exists(ctx context.Context, topic string, id gocql.UUID) (bool, error) {
	var got gocql.UUID
	err := d.s.Query(`SELECT id FROM dead_letters WHERE topic = ? AND id = ?`, topic, id).WithContext(ctx).Scan(&got)
	switch {
	case errors.Is(err, gocql.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("look up dead letter %s/%s: %w", topic, id, UnavailableIn(ctx, err))
	}
	return true, nil
}

const selectDeadLetter = `SELECT topic, id, aggregate_id, sequence, event_id, event_type, reason, envelope, created_at, redriven_at FROM dead_letters`

func scanDeadLetter(scan func(...any) bool) (*DeadLetter, bool) {
	dl := &DeadLetter{}
	var agg, ev *gocql.UUID
	var redriven *time.Time
	if !scan(&dl.Topic, &dl.ID, &agg, &dl.Sequence, &ev, &dl.EventType, &dl.Reason, &dl.Envelope, &dl.CreatedAt, &redriven) {
		return nil, false
	}
	if agg != nil {
		dl.AggregateID = agg.String()
	}
	if ev != nil {
		dl.EventID = ev.String()
	}
	if redriven != nil {
		dl.RedrivenAt = redriven.UTC()
	}
	dl.CreatedAt = dl.CreatedAt.UTC()
	return dl, true
}

// List returns up to limit dead letters of topic, oldest first, after the id after (zero: from
// the first) and recorded in [from, to) (zero: unbounded): ids are time UUIDs taken when the
// dead letter was recorded, so the time range is a range of the partition's clustering key.
func (d *DeadLetters) List(ctx context.Context, topic string, after gocql.UUID, from, to time.Time, limit int) ([]*DeadLetter, error) {
	stmt, args := selectDeadLetter+` WHERE topic = ?`, []any{topic}
	// One lower bound only (CQL allows one per column): the later of the two.
	switch {
	case after != (gocql.UUID{}) && (from.IsZero() || !after.Time().Before(from)):
		stmt, args = stmt+` AND id > ?`, append(args, after)
	case !from.IsZero():
		stmt, args = stmt+` AND id >= ?`, append(args, gocql.MinTimeUUID(from))
	}
	if !to.IsZero() {
		stmt, args = stmt+` AND id < ?`, append(args, gocql.MinTimeUUID(to))
	}
	iter := d.s.Query(stmt+` LIMIT ?`, append(args, limit)...).WithContext(ctx).Iter()
	var out []*DeadLetter
	for {
		dl, ok := scanDeadLetter(iter.Scan)
		if !ok {
			break
		}
		out = append(out, dl)
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("list dead letters of %s: %w", topic, UnavailableIn(ctx, err))
	}
	return out, nil
}

// Get returns one dead letter, or es.ErrNotFound.
func (d *DeadLetters) Get(ctx context.Context, topic string, id gocql.UUID) (*DeadLetter, error) {
	iter := d.s.Query(selectDeadLetter+` WHERE topic = ? AND id = ?`, topic, id).WithContext(ctx).Iter()
	dl, ok := scanDeadLetter(iter.Scan)
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("read dead letter %s/%s: %w", topic, id, UnavailableIn(ctx, err))
	}
	if !ok {
		return nil, fmt.Errorf("dead letter %s in %s: %w", id, topic, es.ErrNotFound)
	}
	return dl, nil
}

// MarkRedriven records that the dead letter was published again at t.
func (d *DeadLetters) MarkRedriven(ctx context.Context, topic string, id gocql.UUID, t time.Time) error {
	if err := d.s.Query(`UPDATE dead_letters SET redriven_at = ? WHERE topic = ? AND id = ?`, t.UTC(), topic, id).
		WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("mark dead letter %s/%s re-driven: %w", topic, id, UnavailableIn(ctx, err))
	}
	return nil
}

// Delete removes a dead letter (discarded by an operator).
func (d *DeadLetters) Delete(ctx context.Context, topic string, id gocql.UUID) error {
	if err := d.s.Query(`DELETE FROM dead_letters WHERE topic = ? AND id = ?`, topic, id).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("delete dead letter %s/%s: %w", topic, id, UnavailableIn(ctx, err))
	}
	return nil
}
