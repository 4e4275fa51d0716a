package app

import (
	"context"

	"github.com/ordersys/ordersys/pkg/es"
)

// RejectionLog is the port through which rejected command ids are remembered for a while
// (*cql.Rejections implements it). Implementations expire entries (the command service keeps
// them as long as command ids).
type RejectionLog interface {
	// Remember records the rejection of commandID on the aggregate. When an outcome of the same
	// command id was recorded meanwhile (a repeat of the command decided elsewhere), nothing is
	// written and it fails with a *es.ConflictError whose CommandRecorded is set.
	Remember(ctx context.Context, aggregateID, commandID string, r es.Rejection) error
	// Recall returns the rejection recorded for commandID on the aggregate when it did not
	// exist (those not in the stream's head); found is false when there is none.
	Recall(ctx context.Context, aggregateID, commandID string) (r es.Rejection, found bool, err error)
}
