package es

import "context"

// AppendRequest asks the event store to append freshly decided events to one aggregate.
type AppendRequest struct {
	// AggregateID and AggregateType name the stream.
	AggregateID, AggregateType string
	// ExpectedVersion is the version the events were decided against; 0 creates the aggregate.
	ExpectedVersion int64
	// Events are the envelopes to append, with sequences ExpectedVersion+1, +2, …
	Events []Envelope
	// CommandID, when set, is recorded atomically with the events so that a repeated command
	// is recognised; CommandFingerprint identifies the command's content. An append whose
	// command id is already recorded (a first outcome or a rejection) is not applied: it fails
	// with a *ConflictError whose CommandRecorded is set.
	CommandID, CommandFingerprint string
	// ForgetCommands are recorded command ids to drop in the same atomic write, so that an
	// aggregate remembers a bounded number of them (see CommandsToForget).
	ForgetCommands []string
}

// AppendResult is what a successful append reports.
type AppendResult struct {
	// Version is the aggregate's version after the append.
	Version int64
	// EventIDs are the appended events' ids in sequence order.
	EventIDs []string
}

// CommandRecord is what the store remembers of a command id: the events its command appended,
// or the rule that rejected it.
type CommandRecord struct {
	// Fingerprint identifies the command's content.
	Fingerprint string
	// FirstSequence and LastSequence bound the events the command appended. For a rejection
	// both are the version the command was rejected at.
	FirstSequence, LastSequence int64
	// Rejected marks a command a business rule rejected (it appended nothing); Rule and Reason
	// are those of its RuleError.
	Rejected     bool
	Rule, Reason string
}

// StreamHead describes an aggregate's stream without its events.
type StreamHead struct {
	// Version is the current version (0 when the aggregate does not exist).
	Version int64
	// Commands holds the command ids recorded with the stream and not yet expired.
	Commands map[string]CommandRecord
}

// EventStore is the port through which aggregates are persisted as event streams.
//
// Append is linearizable per aggregate: of two appends at the same expected version exactly one
// wins; the other gets a *ConflictError (ErrConcurrencyConflict) with the actual version, or
// ErrAlreadyExists when both tried to create the aggregate. Once Append returns without error,
// the events are durable and will reach the outbox.
type EventStore interface {
	// Append appends req.Events if the aggregate is at req.ExpectedVersion.
	Append(ctx context.Context, req AppendRequest) (AppendResult, error)
	// Load streams the events of the aggregate with sequence ≥ from, in order, page by page,
	// decoded and upcast, calling fn for each with only the fields that rebuilding state
	// reads (Folded; LoadRange returns whole envelopes). It returns the stream head read with
	// them.
	Load(ctx context.Context, aggregateID string, from int64, fn func(Envelope) error) (StreamHead, error)
	// LoadLast returns the aggregate's last n events (every event when it has n or fewer), in
	// order, decoded and upcast with the fields of Folded, and the stream head read with them,
	// in one round trip: read beside the newest snapshot, it loads an aggregate whose snapshot
	// is at most n events old without a second one.
	LoadLast(ctx context.Context, aggregateID string, n int) ([]Envelope, StreamHead, error)
	// LoadRange returns the decoded events with from ≤ sequence ≤ to, every field set.
	LoadRange(ctx context.Context, aggregateID string, from, to int64) ([]Envelope, error)
	// Head returns the aggregate's current version and recorded commands.
	Head(ctx context.Context, aggregateID string) (StreamHead, error)
	// Exists reports whether the aggregate has at least one event.
	Exists(ctx context.Context, aggregateID string) (bool, error)
	// SaveSnapshot stores a snapshot (best effort: losing one only costs load time).
	SaveSnapshot(ctx context.Context, s Snapshot) error
	// LatestSnapshot returns the newest snapshot at or below maxVersion (0 = no bound), or
	// ErrNotFound.
	LatestSnapshot(ctx context.Context, aggregateID string, maxVersion int64) (Snapshot, error)
}

// Rejection is what is remembered of a command id whose command a business rule rejected, so
// that repeating the command returns the same rejection.
type Rejection struct {
	// Fingerprint identifies the rejected command's content.
	Fingerprint string
	// Rule is the rule id of the RuleError (its Rule field).
	Rule string
	// Reason is the rule error's reason (its Reason field).
	Reason string
	// Version is the aggregate's version the command was rejected at (0: it does not exist).
	// On an existing aggregate the rejection is recorded with the stream, where the head shows
	// it (CommandRecord with Rejected set) and an append of the same command id fails.
	Version int64
	// Forget lists recorded command ids to drop in the same write (CommandsToForget), so that
	// rejections too leave the aggregate's record bounded.
	Forget []string
}
