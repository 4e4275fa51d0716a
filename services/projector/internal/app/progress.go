package app

import (
	"context"
	"sync"
	"time"

	"github.com/ordersys/ordersys/pkg/readmodel"
)

// Progress is where the consumer group of a projection version stands.
type Progress struct {
	// Version is the table version the group writes.
	Version int
	// Position is the sum of the group's committed offsets; Lag the messages it has not
	// processed yet.
	Position, Lag int64
	// LagSeconds is the age of the oldest message not processed yet (0 when caught up).
	LagSeconds float64
	// RatePerSecond is the position's rate since the previous measurement (0 without one).
	RatePerSecond float64
}

// progressSample is one measurement of a consumer group's position.
type progressSample struct {
	at       time.Time
	position int64
}

// progressMeter measures where the consumer group of each projection version stands (position,
// lag in messages and in seconds: the age of the oldest message not processed yet) and, from the previous measurement of the same group, its rate.
type progressMeter struct {
	cfg    Config
	groups Groups
	mu     sync.Mutex
	last   map[string]progressSample // by group id
}

func newProgressMeter(cfg Config, groups Groups) *progressMeter {
	return &progressMeter{cfg: cfg, groups: groups, last: map[string]progressSample{}}
}

// measure returns the progress of version v of the projection (nil for version 0).
func (m *progressMeter) measure(ctx context.Context, projection string, v int) (*Progress, error) {
	if v <= 0 {
		return nil, nil
	}
	group := GroupID(m.cfg.GroupBase, projection, v)
	parts, err := m.groups.Lag(ctx, group, m.cfg.Topics(projection))
	if err != nil {
		return nil, err
	}
	out := &Progress{Version: v}
	var oldest time.Time
	for _, p := range parts {
		out.Lag += p.Lag
		out.Position += max(p.Committed, 0)
		t, err := m.groups.OldestUnprocessed(ctx, p)
		if err != nil {
			return nil, err
		}
		if !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
	}
	now := time.Now()
	if !oldest.IsZero() {
		out.LagSeconds = max(now.Sub(oldest).Seconds(), 0)
	}
	m.mu.Lock()
	prev, ok := m.last[group]
	if dt := now.Sub(prev.at).Seconds(); ok && dt >= 0.5 {
		out.RatePerSecond = float64(out.Position-prev.position) / dt
	}
	if !ok || now.Sub(prev.at) >= time.Second {
		m.last[group] = progressSample{at: now, position: out.Position}
	}
	m.mu.Unlock()
	return out, nil
}

// run measures every projection's active and building versions every interval, so that a
// status call finds a recent previous sample to compute a rate from.
func (m *progressMeter) run(ctx context.Context, versions VersionStore, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, p := range readmodel.Projections() {
			if v, err := versions.Load(ctx, p); err == nil {
				_, _ = m.measure(ctx, p, v.Active)
				_, _ = m.measure(ctx, p, v.Building)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
