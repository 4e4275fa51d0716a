package relay

import (
	"context"

	"github.com/gocql/gocql"
)

// recentPublished is how many event ids of its last published sequences an aggregate keeps, so
// that the copies the rescan cursor reads again are confirmed as duplicates without a store read
// (16 bytes each: at most 1 KiB per aggregate a lane keeps).
const recentPublished = 64

// remember records the event id published at seq (called in sequence order).
func (a *aggState) remember(seq int64, eventID string) {
	id, _ := gocql.ParseUUID(eventID) // a published event's id is a UUID (matches, gap fill)
	switch {
	case seq <= a.last:
		return
	case seq == a.last+1:
		a.recent = append(a.recent, id)
		if len(a.recent) > recentPublished {
			a.recent = append(a.recent[:0], a.recent[len(a.recent)-recentPublished:]...)
		}
	default:
		a.recent = append(a.recent[:0], id)
	}
}

// publishedID returns the event id published at seq ≤ last when it is still remembered, else "".
func (a *aggState) publishedID(seq int64) string {
	i := len(a.recent) - 1 - int(a.last-seq)
	if seq > a.last || i < 0 {
		return ""
	}
	return a.recent[i].String()
}

// dropPublished settles a change at a sequence already published: a duplicate when its event id
// is the one published there; otherwise it waits, as a suspect, for a comparison with
// event_store (the truth).
func (l *lane) dropPublished(a *aggState, c *Change) {
	if id := a.publishedID(c.Sequence); id != "" && id == c.EventID {
		l.p.d.Metrics.Duplicates.WithLabelValues(c.Cursor).Inc()
		c.settle(Duplicate)
		return
	}
	a.suspects = append(a.suspects, c)
}

// resolveSuspects compares the suspects at published sequences with event_store, one range read
// per round: the same event id is a duplicate; another is a divergent event, counted, logged
// with both ids and settled without being published (the published event stands).
func (l *lane) resolveSuspects(ctx context.Context, a *aggState) error {
	d := l.p.d
	lo, hi := int64(-1), int64(-1)
	for _, c := range a.suspects {
		if c.Sequence <= a.last {
			lo, hi = minSet(lo, c.Sequence), max(hi, c.Sequence)
		}
	}
	if lo < 0 {
		return nil
	}
	hi = min(hi, lo+int64(l.p.cfg.FillChunk)-1)
	envs, err := d.Events.LoadRaw(ctx, a.id, lo, hi)
	if err != nil {
		d.Metrics.StoreErrors.WithLabelValues("load_events").Inc()
		return err
	}
	stored := make(map[int64]string, len(envs))
	for _, env := range envs {
		stored[env.Sequence] = env.EventID
	}
	kept := a.suspects[:0]
	for _, c := range a.suspects {
		if c.Sequence < lo || c.Sequence > hi || c.Sequence > a.last {
			kept = append(kept, c)
			continue
		}
		storedID, published := stored[c.Sequence], a.publishedID(c.Sequence)
		if c.EventID == storedID && (published == "" || published == storedID) {
			d.Metrics.Duplicates.WithLabelValues(c.Cursor).Inc()
			c.settle(Duplicate)
			continue
		}
		d.Metrics.Divergent.Inc()
		d.Logger.Error("relay: divergent event at a published sequence, not published",
			"aggregate_id", a.id, "sequence", c.Sequence, "event_id", c.EventID,
			"stored_event_id", storedID, "published_event_id", published, "cursor", c.Cursor)
		c.settle(Divergent)
	}
	a.suspects = kept
	return nil
}

// minSet returns v when cur is unset (negative), else min(cur, v).
func minSet(cur, v int64) int64 {
	if cur < 0 {
		return v
	}
	return min(cur, v)
}
