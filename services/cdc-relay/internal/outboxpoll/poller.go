// Package outboxpoll is the portable relay source: it reads the outbox table of any CQL store in
// time order, shard by shard, with a safety window for writes that commit late, and checkpoints
// its position in relay_checkpoints. A second, slower cursor re-reads everything some time later
// so that a row that became visible after the first cursor passed it is still published (the
// pipeline drops what was already published).
package outboxpoll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/relay"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/store"
)

// Checkpoint names in relay_checkpoints.
const (
	FastCursor   = "outbox-poll"
	RescanCursor = "outbox-poll-rescan"
)

// Config tunes the poller.
type Config struct {
	// PollInterval is the pause after a poll that found nothing new (default 50ms).
	PollInterval time.Duration
	// SafetyWindow: rows are read once their id is older than now − SafetyWindow, so that writes
	// that commit late (a timeuuid is taken by the coordinator before the write is visible)
	// are not skipped (default 250ms).
	SafetyWindow time.Duration
	// RescanWindow is how far behind the rescan cursor reads (default 30s); RescanInterval its
	// pause when idle (default 1s). A zero RescanWindow below 0 disables the rescan.
	RescanWindow, RescanInterval time.Duration
	// BucketSkew is how long past a minute bucket's end a cursor keeps reading it (default 2s).
	// Writers take a row's bucket and id from one clock reading, so every id of a bucket is
	// before its end; the margin is for rows written before that rule, whose bucket (writer's
	// clock) and id (coordinator's now()) could disagree.
	BucketSkew time.Duration
	// StartLookback is where a cursor without checkpoint starts: now − StartLookback (default
	// 24h).
	StartLookback time.Duration
	// BatchSize is the most rows read per query (default 500).
	BatchSize int
	// CheckpointEvery bounds how often a shard's checkpoint is written (default 1s).
	CheckpointEvery time.Duration
	// DisableRescan turns the rescan cursor off (tests of the fast cursor alone).
	DisableRescan bool
	// Shards are the outbox shards read (default: all of cql.OutboxShards); a relay that holds
	// some shards' leases runs one poller per shard.
	Shards []int
	// Now is the clock the cursors' horizons are taken from: the same clock the writers take
	// the rows' buckets and ids from, the cluster's (cql.ClusterClock) in production (default
	// time.Now).
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.PollInterval <= 0 {
		c.PollInterval = 50 * time.Millisecond
	}
	if c.SafetyWindow <= 0 {
		c.SafetyWindow = 250 * time.Millisecond
	}
	if c.RescanWindow <= 0 {
		c.RescanWindow = 30 * time.Second
	}
	if c.RescanInterval <= 0 {
		c.RescanInterval = time.Second
	}
	if c.BucketSkew <= 0 {
		c.BucketSkew = 2 * time.Second
	}
	if c.StartLookback <= 0 {
		c.StartLookback = 24 * time.Hour
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.CheckpointEvery <= 0 {
		c.CheckpointEvery = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Poller is the outbox-poll source.
type Poller struct {
	cfg     Config
	s       *gocql.Session
	cps     *store.Checkpoints
	metrics *relay.Metrics
	log     *slog.Logger
	now     func() time.Time
}

// New returns a poller reading the outbox of the session's keyspace.
func New(cfg Config, s *gocql.Session, m *relay.Metrics, log *slog.Logger) *Poller {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = relay.NewMetrics(nil)
	}
	return &Poller{cfg: cfg, s: s, cps: store.NewCheckpoints(s), metrics: m, log: log, now: cfg.Now}
}

// Name implements relay.Source.
func (p *Poller) Name() string { return "outbox-poll" }

// Run reads every shard with the fast cursor and, behind it, the rescan cursor, until ctx ends.
func (p *Poller) Run(ctx context.Context, sink relay.Sink) error {
	shards := p.cfg.Shards
	if shards == nil {
		for shard := range cql.OutboxShards {
			shards = append(shards, shard)
		}
	}
	var fast, cursors []*cursor
	for _, shard := range shards {
		f := &cursor{p: p, name: FastCursor, shard: shard, window: p.cfg.SafetyWindow, interval: p.cfg.PollInterval,
			early: map[gocql.UUID]*earlyRow{}}
		if !p.cfg.DisableRescan {
			f.covered = map[int64]*coverage{}
		}
		fast = append(fast, f)
	}
	cursors = append(cursors, fast...)
	if !p.cfg.DisableRescan {
		for _, f := range fast {
			cursors = append(cursors, &cursor{p: p, name: RescanCursor, shard: f.shard, window: p.cfg.RescanWindow,
				interval: p.cfg.RescanInterval, bound: f.safeThrough, fast: f})
		}
	}
	// Load every checkpoint first, so that the rescan cursors are bounded by the fast ones.
	for _, c := range cursors {
		if err := c.load(ctx); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	for _, c := range cursors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.run(ctx, sink)
		}()
	}
	stopAge := p.reportAges(ctx, cursors)
	wg.Wait()
	stopAge()
	return ctx.Err()
}

// reportAges keeps the checkpoint-age gauges current.
func (p *Poller) reportAges(ctx context.Context, cursors []*cursor) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			oldest := map[string]time.Time{}
			for _, c := range cursors {
				st := c.safeThrough()
				if o, ok := oldest[c.name]; !ok || st.Before(o) {
					oldest[c.name] = st
				}
			}
			now := p.now()
			for name, st := range oldest {
				p.metrics.ReportCheckpointAge(p, name, now.Sub(st).Seconds())
			}
			select {
			case <-ctx.Done():
				p.metrics.ForgetCheckpointAges(p)
				close(done)
				return
			case <-t.C:
			}
		}
	}()
	return func() { <-done }
}

// cursor reads one shard in time order. It keeps one sub-cursor per open minute bucket: the
// current bucket stays open until the horizon is past its end plus the skew allowance, while the
// next one is already read, so rows at the start of a minute wait for nothing.
type cursor struct {
	p        *Poller
	name     string
	shard    int
	window   time.Duration
	interval time.Duration
	bound    func() time.Time // reads stop at this time too (rescan: the fast cursor's position)
	fast     *cursor          // rescan only: the fast cursor of the shard, whose late reads it skips

	// covered holds, per bucket, what the fast cursor read late enough for the rescan to skip
	// (covered.go; fast cursor only, nil without a rescan; guarded by mu).
	covered map[int64]*coverage

	mu   sync.Mutex
	subs []*sub // by bucket; the first is the checkpoint's

	// early holds the rows read ahead of the horizon (fast cursor only; nil: no read-ahead),
	// until the cursor reaches them.
	early map[gocql.UUID]*earlyRow

	saved   store.Checkpoint
	savedAt time.Time
}

// sub reads one bucket.
type sub struct {
	bucket int64
	lastID gocql.UUID // read position
	closed bool       // fully read
	tr     *tracker
}

func bucketStart(b int64) time.Time { return cql.BucketStart(b) }

func (c *cursor) safeThrough() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.subs) == 0 {
		return time.Time{}
	}
	_, st, _, _ := c.subs[0].tr.state()
	return st
}

func (c *cursor) load(ctx context.Context) error {
	for {
		cp, ok, err := c.p.cps.Load(ctx, c.name, c.shard)
		if err == nil {
			if !ok {
				cp = store.Checkpoint{Bucket: cql.Bucket(c.p.now().Add(-c.p.cfg.StartLookback))}
			}
			c.subs = []*sub{{bucket: cp.Bucket, lastID: cp.LastID, tr: newTracker(cp.Bucket, cp.LastID)}}
			c.saved = store.Checkpoint{Bucket: cp.Bucket, LastID: cp.LastID}
			return nil
		}
		c.p.metrics.StoreErrors.WithLabelValues("load_checkpoint").Inc()
		c.p.log.Warn("relay: cannot load checkpoint, retrying", "cursor", c.name, "shard", c.shard, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (c *cursor) run(ctx context.Context, sink relay.Sink) {
	failures := 0
	for ctx.Err() == nil {
		more, err := c.poll(ctx, sink)
		c.maybeSave(ctx, false)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			failures++
			c.p.metrics.StoreErrors.WithLabelValues("read_outbox").Inc()
			c.p.log.Warn("relay: outbox read failed", "cursor", c.name, "shard", c.shard, "err", err)
			sleep(ctx, min(time.Duration(failures)*200*time.Millisecond, 5*time.Second))
			continue
		}
		failures = 0
		if !more {
			sleep(ctx, c.interval)
		}
	}
	// Last checkpoint of the term, best effort.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	c.maybeSave(sctx, true)
	cancel()
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// poll reads the next rows of the open buckets below the horizon and submits them. It reports
// whether there is more to read at once.
func (c *cursor) poll(ctx context.Context, sink relay.Sink) (bool, error) {
	now := c.p.now()
	horizon := now.Add(-c.window)
	if c.bound != nil {
		if b := c.bound(); b.Before(horizon) {
			horizon = b
		}
	}
	c.mu.Lock()
	subs := append([]*sub(nil), c.subs...)
	c.mu.Unlock()
	more := false
	for _, s := range subs {
		if s.closed || horizon.Before(bucketStart(s.bucket)) {
			continue
		}
		c.skipCovered(s, horizon)
		from := s.lastID
		until := horizon
		if c.early != nil {
			until = now // read ahead: see early.go
		}
		rows, err := cql.ReadOutbox(ctx, c.p.s, s.bucket, c.shard, s.lastID, until, c.p.cfg.BatchSize)
		if err != nil {
			return false, err
		}
		// Noted before the rows are submitted (and settled, which lets the rescan move on).
		c.noteCovered(s, from, rows, horizon, now)
		behind := 0 // rows at or below the horizon
		for i := range rows {
			r := &rows[i]
			if r.ID.Time().After(horizon) {
				if err := c.readAhead(ctx, sink, r); err != nil {
					return false, err
				}
				continue
			}
			behind++
			done := s.tr.row(r.ID)
			s.lastID = r.ID
			if c.reachedEarly(r.ID, done) {
				continue
			}
			if err := sink.Submit(ctx, change(c.name, r, func(relay.Outcome) { done() })); err != nil {
				return false, err
			}
		}
		c.p.metrics.RowsRead.WithLabelValues(c.name).Add(float64(len(rows)))
		if behind > 0 {
			more = true // rows may be right behind: look again at once
		}
		if behind >= c.p.cfg.BatchSize {
			continue // a full batch below the horizon: there may be more
		}
		s.tr.pollEnd(horizon)
		// Everything of this bucket below the horizon is read: close it once the horizon is
		// past its end plus the skew allowance.
		if horizon.After(bucketStart(s.bucket + 1).Add(c.p.cfg.BucketSkew)) {
			s.closed = true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Open the next bucket as soon as the horizon reaches it.
	if last := c.subs[len(c.subs)-1]; horizon.After(bucketStart(last.bucket + 1)) {
		c.subs = append(c.subs, &sub{bucket: last.bucket + 1, tr: newTracker(last.bucket+1, gocql.UUID{})})
		more = true
	}
	// Drop the closed buckets whose rows are all settled.
	for len(c.subs) > 1 && c.subs[0].closed {
		if _, _, unsettled, _ := c.subs[0].tr.state(); unsettled > 0 {
			break
		}
		if c.fast != nil {
			c.fast.forgetCovered(c.subs[0].bucket)
		}
		c.subs = c.subs[1:]
	}
	return more, nil
}

// maybeSave writes the checkpoint when it moved and CheckpointEvery has passed (or at once when
// force is set).
func (c *cursor) maybeSave(ctx context.Context, force bool) {
	c.mu.Lock()
	head := c.subs[0]
	c.mu.Unlock()
	lastID, _, _, _ := head.tr.state()
	cp := store.Checkpoint{Bucket: head.bucket, LastID: lastID}
	if cp == c.saved {
		return
	}
	if !force && c.p.now().Sub(c.savedAt) < c.p.cfg.CheckpointEvery {
		return
	}
	if err := c.p.cps.Save(ctx, c.name, c.shard, cp); err != nil {
		if !errors.Is(err, context.Canceled) {
			c.p.metrics.StoreErrors.WithLabelValues("save_checkpoint").Inc()
			c.p.log.Warn("relay: cannot save checkpoint", "cursor", c.name, "shard", c.shard, "err", err)
		}
		return
	}
	c.saved, c.savedAt = cp, c.p.now()
}

// String describes the cursor for logs.
func (c *cursor) String() string { return fmt.Sprintf("%s/%d", c.name, c.shard) }
