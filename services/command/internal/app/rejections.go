package app

import "context"

// Rejection is what the service remembers of a command id whose command a business rule
// rejected, so that repeating the command returns the same rejection.
type Rejection struct {
	// Fingerprint identifies the rejected command's content.
	Fingerprint string
	// Rule is the rule id of the es.RuleError (its Rule field).
	Rule string
	// Reason is the rule error's reason (its Reason field).
	Reason string
	// Version is the aggregate's version the command was rejected at (0: it does not exist).
	// On an existing aggregate the rejection is recorded with the stream, where the head shows
	// it (es.CommandRecord with Rejected set) and an append of the same command id fails.
	Version int64
	// Forget lists recorded command ids to drop in the same write (es.CommandsToForget), so
	// that rejections too leave the aggregate's record bounded.
	Forget []string
}

// RejectionLog is the port through which rejected command ids are remembered for a while.
// Implementations expire entries (the command service keeps them as long as command ids).
type RejectionLog interface {
	// Remember records the rejection of commandID on the aggregate. When an outcome of the same
	// command id was recorded meanwhile (a repeat of the command decided elsewhere), nothing is
	// written and it fails with a *es.ConflictError whose CommandRecorded is set.
	Remember(ctx context.Context, aggregateID, commandID string, r Rejection) error
	// Recall returns the rejection recorded for commandID on the aggregate when it did not
	// exist (those not in the stream's head); found is false when there is none.
	Recall(ctx context.Context, aggregateID, commandID string) (r Rejection, found bool, err error)
}
