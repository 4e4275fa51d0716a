package app

import (
	"context"
	"errors"

	"github.com/ordersys/ordersys/pkg/es"
)

// attemptAsNew decides a creating command (Kind.Creates: an order's Create) on a new
// aggregate, without reading the store: almost every creation names an id that holds nothing
// yet, and the creation's batch only applies where no stream exists, which checks what the
// read would have (the order's snapshot, head and rows: three of a creation's eight requests).
// done is false, and the caller goes on as without it (reads, decides, dedupes and remembers
// rejections on what it read), when the aggregate is cached, when the command id is remembered
// as rejected (kept apart from streams for aggregates that do not exist, so the batch cannot
// check it), when the command is refused or appends nothing, and when the append is refused:
// the stream exists (another creator got there first, the command repeats one whose answer was
// lost, the id is a customer's) or the store refused it before writing. A repeat thus costs
// more than it did (a failed conditional batch and a SERIAL read before the read path answers
// it), and counts as a conflict in the append metrics: repeats are rare, creations are not.
func (h *Handler[A, C]) attemptAsNew(ctx context.Context, req Request[C], meta es.Metadata) (res Result, done bool, err error) {
	s := h.svc
	if h.kind.Creates == nil || !h.kind.Creates(req.Command) {
		return Result{}, false, nil
	}
	if _, cached := s.cache.get(h.cacheKey(req.AggregateID)); cached {
		return Result{}, false, nil
	}
	if req.CommandID != "" && s.opts.Rejections != nil {
		if _, found, err := s.opts.Rejections.Recall(ctx, req.AggregateID, req.CommandID); found || err != nil {
			return Result{}, false, nil // the read path recalls it again and answers
		}
	}
	res, decided, err := h.decideAndAppend(ctx, req, meta, h.kind.New(req.AggregateID), nil, true)
	switch {
	case !decided || (err == nil && len(res.EventIDs) == 0):
		return Result{}, false, nil // refused, or nothing appended (nothing checked the presumption)
	case err == nil:
		return res, true, nil
	case errors.Is(err, es.ErrUnavailable) || ctx.Err() != nil:
		// The append may have been written (outcome unknown): deciding again could append the
		// command twice when it carries no id.
		return Result{}, true, err
	default:
		// The stream exists (ErrAlreadyExists), or the store refused the append before
		// writing anything: the read path answers.
		return Result{}, false, nil
	}
}
