package relay

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// committer writes publish_progress for acknowledged records (only after the broker's
// acknowledgement, in order per aggregate) and then settles their outbox changes.
func (l *lane) committer(ctx context.Context) {
	d := l.p.d
	for {
		var done []*flight
		select {
		case <-ctx.Done():
			return
		case done = <-l.commits:
		}
	more:
		for len(done) < 4096 {
			select {
			case x := <-l.commits:
				done = append(done, x...)
			default:
				break more
			}
		}
		latest := map[string]int64{}
		for _, f := range done {
			if f.poison {
				continue
			}
			if f.e.seq > latest[f.a.id] {
				latest[f.a.id] = f.e.seq
			}
		}
		if !l.saveProgress(ctx, latest) {
			return
		}
		for _, f := range done {
			e := f.e
			if f.dlq && e.dlqEarlier {
				d.Logger.Info("relay: outbox row read again, dead-lettered before", "topic", e.topic, "aggregate_id", e.env.AggregateID,
					"sequence", e.seq, "dead_letter_id", e.dlqID.String())
				for _, c := range e.changes {
					c.settle(DeadLettered)
				}
				continue
			}
			if f.dlq {
				d.Metrics.DeadLettered.WithLabelValues(e.topic, string(e.dlqKind)).Inc()
				d.Logger.Warn("relay: dead-lettered", "topic", e.topic, "aggregate_id", e.env.AggregateID, "sequence", e.seq,
					"event_id", e.env.EventID, "dead_letter_id", e.dlqID.String(), "reason", e.dlqReason)
				for _, c := range e.changes {
					c.settle(DeadLettered)
				}
				continue
			}
			d.Metrics.observePublished(e.topic, e.committed)
			for _, c := range e.changes {
				c.settle(Published)
			}
		}
	}
}

// saveProgress writes the given last sequences, saving them all again after a failure until it
// succeeds or ctx ends (a store outage: nothing is settled meanwhile).
func (l *lane) saveProgress(ctx context.Context, latest map[string]int64) bool {
	d := l.p.d
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = 50*time.Millisecond, 5*time.Second
	for len(latest) > 0 && d.Progress.Save(ctx, latest) != nil {
		d.Metrics.StoreErrors.WithLabelValues("save_progress").Inc()
		select {
		case <-ctx.Done():
			return false
		case <-time.After(bo.NextBackOff()):
		}
	}
	return true
}

// isSequenced says whether e is the aggregate's pending entry at its sequence (not a poison row).
func isSequenced(a *aggState, e *entry) bool { return a.pending[e.seq] == e }
