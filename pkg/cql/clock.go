package cql

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gocql/gocql"
)

// ClusterClock is the CQL cluster's clock as seen from this process: the local clock plus an
// offset measured against a coordinator's now(). Writers (Options.Now) and the relay's outbox
// cursors use it, so that one clock — the cluster's — decides both where an outbox row goes and
// which rows a cursor reads, whatever the hosts' own clocks say. The remaining error is the
// coordinators' disagreement among themselves plus half a round trip.
type ClusterClock struct {
	s      *gocql.Session
	local  func() time.Time
	offset atomic.Int64 // nanoseconds to add to the local clock
}

// ClusterClockSyncInterval is how often the services re-measure the offset (clocks drift slowly;
// a step of the host's clock is caught within it).
const ClusterClockSyncInterval = 30 * time.Second

// syncSamples is how many readings one Sync takes; it keeps the one with the shortest round trip.
const syncSamples = 3

// NewClusterClock returns a clock on the session's cluster, reading the local clock with local
// (nil: time.Now). Until the first Sync it is the local clock.
func NewClusterClock(s *gocql.Session, local func() time.Time) *ClusterClock {
	if local == nil {
		local = time.Now
	}
	return &ClusterClock{s: s, local: local}
}

// Now returns the cluster's time.
func (c *ClusterClock) Now() time.Time { return c.local().Add(c.Offset()) }

// Offset returns what is added to the local clock.
func (c *ClusterClock) Offset() time.Duration { return time.Duration(c.offset.Load()) }

// Sync measures the offset: it reads a coordinator's now() a few times and, for the reading with
// the shortest round trip, takes the coordinator's time as the local midpoint of that trip.
func (c *ClusterClock) Sync(ctx context.Context) error {
	best := time.Duration(-1)
	var offset time.Duration
	for i := 0; i < syncSamples; i++ {
		var u gocql.UUID
		t0 := c.local()
		if err := c.s.Query(`SELECT now() FROM system.local`).WithContext(ctx).Scan(&u); err != nil {
			return fmt.Errorf("cluster clock: %w", UnavailableIn(ctx, err))
		}
		rtt := c.local().Sub(t0)
		if best < 0 || rtt < best {
			best, offset = rtt, u.Time().Sub(t0.Add(rtt/2))
		}
	}
	c.offset.Store(int64(offset))
	return nil
}

// Run syncs every interval until ctx ends; a failed sync keeps the last offset.
func (c *ClusterClock) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = c.Sync(ctx)
		}
	}
}
