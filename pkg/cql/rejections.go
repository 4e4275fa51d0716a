package cql

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/es"
)

// Rejection is a command outcome that appended nothing (a business rule rejected it), kept so
// that a repeated command id returns the same rejection. A rejection on an existing aggregate
// (Version > 0) is recorded in the aggregate's static commands map in event_store, beside its
// successful commands, where the head shows it and an append's condition sees it, and also in
// the command_rejections table, where releases before this one look for it (they ignore the
// map's rejection entries); one on an aggregate that does not exist (Version 0: there is no
// partition to record it in) goes to the table only. Find reads the table.
type Rejection struct {
	// AggregateID is the aggregate the command was sent to (a UUID).
	AggregateID string
	// CommandID is the client's command id.
	CommandID string
	// Fingerprint identifies the command's content.
	Fingerprint string
	// Code is the machine-readable reason, e.g. the rule id of an es.RuleError.
	Code string
	// Message is the human-readable reason.
	Message string
	// CreatedAt is when the rejection was recorded (zero: now).
	CreatedAt time.Time
	// Version is the aggregate's version the command was rejected at (0: it does not exist).
	Version int64
	// Forget lists recorded command ids to drop from the aggregate's commands map in the same
	// write (see es.CommandsToForget), when Version > 0.
	Forget []string
}

// defaultRejectionTTL is how long, in seconds, a rejection is kept when no TTL is configured
// (the command_rejections table's default).
const defaultRejectionTTL = 86400

// Rejections stores command rejections (see Rejection for where), each for a limited time
// (the table's default is 24h).
type Rejections struct {
	s   *gocql.Session
	ttl time.Duration
}

// NewRejections returns the rejection store on the session's keyspace; entries live for ttl
// (0: the table's default of 24h).
func NewRejections(s *gocql.Session, ttl time.Duration) *Rejections {
	return &Rejections{s: s, ttl: ttl}
}

// Save records r, replacing an earlier rejection of the same command id.
func (r *Rejections) Save(ctx context.Context, rej Rejection) error {
	aggID, err := parseUUID("aggregate_id", rej.AggregateID)
	if err != nil {
		return err
	}
	secs := int((r.ttl + time.Second - 1) / time.Second)
	if rej.Version > 0 {
		if err := r.record(ctx, aggID, rej, secs); err != nil {
			return err
		}
	}
	at := rej.CreatedAt
	if at.IsZero() {
		at = time.Now()
	}
	stmt := `INSERT INTO command_rejections (aggregate_id, command_id, fingerprint, code, message, created_at) VALUES (?,?,?,?,?,?)`
	args := []any{aggID, rej.CommandID, rej.Fingerprint, rej.Code, rej.Message, at.UTC()}
	if secs > 0 {
		stmt += ` USING TTL ?`
		args = append(args, secs)
	}
	if err := r.s.Query(stmt, args...).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("save rejection of command %s on %s: %w", rej.CommandID, rej.AggregateID, UnavailableIn(ctx, err))
	}
	return nil
}

// record writes the rejection into the aggregate's commands map, on the condition (Paxos, like
// the appends that read and write that map) that the command id is not recorded yet: a first
// outcome recorded meanwhile (by another replica, for a repeat of the same command) stands, and
// Save then fails with a *es.ConflictError whose CommandRecorded is set. The ids of
// rej.Forget are dropped in the same write, which keeps the map bounded.
func (r *Rejections) record(ctx context.Context, aggID gocql.UUID, rej Rejection, secs int) error {
	if secs <= 0 {
		secs = defaultRejectionTTL
	}
	b := r.s.Batch(gocql.LoggedBatch).WithContext(ctx)
	b.Query(`UPDATE event_store USING TTL ? SET commands[?] = ? WHERE aggregate_id = ? IF commands[?] = null`, secs, rej.CommandID,
		rejectionValue(rej.Fingerprint, rej.Version, rej.Code, rej.Message), aggID, rej.CommandID)
	if len(rej.Forget) > 0 {
		b.Query(`UPDATE event_store SET commands = commands - ? WHERE aggregate_id = ?`, rej.Forget, aggID)
	}
	applied, actual, _, err := executeOnStream(r.s, b)
	if err != nil {
		return fmt.Errorf("save rejection of command %s on %s: %w", rej.CommandID, rej.AggregateID, UnavailableIn(ctx, err))
	}
	if !applied {
		return &es.ConflictError{AggregateID: rej.AggregateID, Expected: rej.Version, Actual: actual, CommandRecorded: true}
	}
	return nil
}

// Find returns the rejection recorded for commandID on the aggregate; found is false when
// there is none (or it expired).
func (r *Rejections) Find(ctx context.Context, aggregateID, commandID string) (rej Rejection, found bool, err error) {
	aggID, err := parseUUID("aggregate_id", aggregateID)
	if err != nil {
		return Rejection{}, false, err
	}
	rej = Rejection{AggregateID: aggregateID, CommandID: commandID}
	err = r.s.Query(`SELECT fingerprint, code, message, created_at FROM command_rejections WHERE aggregate_id = ? AND command_id = ?`,
		aggID, commandID).WithContext(ctx).Scan(&rej.Fingerprint, &rej.Code, &rej.Message, &rej.CreatedAt)
	if errors.Is(err, gocql.ErrNotFound) {
		return Rejection{}, false, nil
	}
	if err != nil {
		return Rejection{}, false, fmt.Errorf("find rejection of command %s on %s: %w", commandID, aggregateID, UnavailableIn(ctx, err))
	}
	rej.CreatedAt = rej.CreatedAt.UTC()
	return rej, true, nil
}

// Remember records the rejection of commandID on the aggregate (rule id as code, reason as
// message); see Save.
func (r *Rejections) Remember(ctx context.Context, aggregateID, commandID string, rej es.Rejection) error {
	return r.Save(ctx, Rejection{
		AggregateID: aggregateID, CommandID: commandID, Fingerprint: rej.Fingerprint, Code: rej.Rule, Message: rej.Reason,
		Version: rej.Version, Forget: rej.Forget,
	})
}

// Recall returns the rejection recorded for commandID on the aggregate, if any; see Find.
func (r *Rejections) Recall(ctx context.Context, aggregateID, commandID string) (es.Rejection, bool, error) {
	rej, found, err := r.Find(ctx, aggregateID, commandID)
	if err != nil || !found {
		return es.Rejection{}, false, err
	}
	return es.Rejection{Fingerprint: rej.Fingerprint, Rule: rej.Code, Reason: rej.Message}, true, nil
}
