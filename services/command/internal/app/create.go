package app

import (
	"context"
	"errors"

	"github.com/ordersys/ordersys/pkg/es"
)

// attemptAsNew decides a creating command (Kind.Creates: an order's Create) on a new
// aggregate, without reading the store: almost every creation names an id that holds nothing
// yet, and the creation's batch only applies where no stream exists, which checks what the
// read would have (the order's snapshot, head and rows: three of a creation's eight
// requests). The remembered rejection of the command id is recalled while the command is
// prepared (its customer read), so the append follows one round trip of reads.
//
// done is false, and the caller goes on as without it (reads, decides, dedupes and remembers
// rejections on what it read), when the aggregate is cached, when the command id is remembered
// as rejected (kept apart from streams for aggregates that do not exist, so the batch cannot
// check it) or the recall failed, when preparing or deciding the command fails or appends
// nothing, and when the append is refused: the stream exists (another creator got there first,
// the command repeats one whose answer was lost, the id is a customer's) or the store refused
// it before writing. A repeat thus costs more than it did (a failed conditional batch and a
// SERIAL read before the read path answers it), and counts as a conflict in the append
// metrics: repeats are rare, creations are not. ordersys_command_presumed_new_total counts each
// way out.
func (h *Handler[A, C]) attemptAsNew(ctx context.Context, req Request[C], meta es.Metadata) (res Result, done bool, err error) {
	s := h.svc
	if h.kind.Creates == nil || !h.kind.Creates(req.Command) {
		return Result{}, false, nil
	}
	if _, cached := s.cache.get(h.cacheKey(req.AggregateID)); cached {
		return Result{}, false, nil
	}
	count := func(result string) { s.opts.Metrics.presumedNew.WithLabelValues(req.Name, result).Inc() }
	recall := h.recallBeside(ctx, req)
	cmd, err := h.prepare(ctx, req.Command)
	if rc := recall(); rc.found || rc.err != nil {
		count(newRecalled) // the read path recalls it again and answers
		return Result{}, false, nil
	}
	if err != nil {
		count(newRefused) // the read path prepares it again, after its own checks
		return Result{}, false, nil
	}
	res, decided, err := h.decideAndAppend(ctx, req, cmd, meta, h.kind.New(req.AggregateID), nil, true)
	switch {
	case !decided || (err == nil && len(res.EventIDs) == 0):
		count(newRefused) // refused, or nothing appended (nothing checked the presumption)
		return Result{}, false, nil
	case err == nil:
		count(newAppended)
		return res, true, nil
	case errors.Is(err, es.ErrUnavailable) || ctx.Err() != nil:
		// The append may have been written (outcome unknown): deciding again could append the
		// command twice when it carries no id.
		count(newUnknown)
		return Result{}, true, err
	case errors.Is(err, es.ErrAlreadyExists):
		count(newExists)
		return Result{}, false, nil
	default:
		count(newRefused) // the store refused the append before writing anything
		return Result{}, false, nil
	}
}
