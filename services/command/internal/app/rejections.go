package app

import (
	"context"
	"sync"

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

// recalled is the answer of a RejectionLog.Recall.
type recalled struct {
	r     es.Rejection
	found bool
	err   error
}

// recallBeside starts recalling a remembered rejection of the request's command id, to run
// beside another read, and returns the call that waits for its answer (at once a zero answer
// when the request has no command id or the service no rejection log; the same answer when
// called again).
func (h *Handler[A, C]) recallBeside(ctx context.Context, req Request[C]) func() recalled {
	if req.CommandID == "" || h.svc.opts.Rejections == nil {
		return func() recalled { return recalled{} }
	}
	ch := make(chan recalled, 1)
	go func() {
		r, found, err := h.svc.opts.Rejections.Recall(ctx, req.AggregateID, req.CommandID)
		ch <- recalled{r, found, err}
	}()
	return sync.OnceValue(func() recalled { return <-ch })
}
