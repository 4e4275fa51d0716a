package app

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ordersys/ordersys/pkg/cql"
)

// Sharded relays (the outbox-poll source).
//
// The outbox is spread over cql.OutboxShards shards (an aggregate's rows are all in one:
// cql.ShardOf), and each shard has a lease of its own, "cdc-relay/shard/<n>". Every instance
// announces itself in relay_members (a row with the lease TTL, written every TTL/3) and reads
// who is alive; with the live owners sorted, shard n belongs to owner n mod count. An instance
// runs a term (pipeline + poller of that shard, fenced by that shard's lease) for each shard it
// should hold and can lease, and gives up (ends the term, which waits for its publish calls,
// then releases the lease) each shard it should no longer hold. So N instances share the
// shards evenly, a joining instance gets its share once the others see it (within TTL/3) and
// hand it over, and a dead one's shards move when its leases expire (the TTL). Two instances
// can disagree about membership for a moment; the leases still give every shard one publisher.
// The intent recovery runs with shard 0.
//
// An instance of a release before sharding holds the single lease "cdc-relay" over the whole
// outbox; while anyone else holds it, a sharded instance holds no shard (a rolling upgrade
// never has two publishers of a shard).

// shardLeaseName is the lease of one outbox shard.
func shardLeaseName(shard int) string { return LeaseName + "/shard/" + strconv.Itoa(shard) }

// ownedShards returns the shards owner should hold among the live owners (sorted).
func ownedShards(live []string, owner string) []int {
	i := slices.Index(live, owner)
	if i < 0 {
		return nil
	}
	var out []int
	for shard := range cql.OutboxShards {
		if shard%len(live) == i {
			out = append(out, shard)
		}
	}
	return out
}

// shardTerm is a running shard's lease loop.
type shardTerm struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// runSharded keeps this instance's share of the shards until ctx ends.
func (r *Relay) runSharded(ctx context.Context) error {
	owner := r.lease.Owner()
	members := cql.NewMembers(r.s, LeaseName, owner, r.cfg.LeaseTTL)
	r.log.Info("sharing the outbox shards", "owner", owner, "shards", cql.OutboxShards, "ttl", r.cfg.LeaseTTL)
	running := map[int]*shardTerm{}
	draining := map[int]*shardTerm{} // handed over, still finishing its publish calls
	var wg sync.WaitGroup
	stop := func(shard int) {
		t := running[shard]
		delete(running, shard)
		t.cancel() // the term drains, then its lease loop releases the lease
		draining[shard] = t
	}
	tick := time.NewTicker(r.cfg.LeaseTTL / 3)
	defer tick.Stop()
	for {
		want, err := r.wantedShards(ctx, members)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			r.log.Warn("shard membership: keeping the shards as they are", "err", err)
		} else {
			for shard := range running {
				if !slices.Contains(want, shard) {
					r.log.Info("handing over a shard", "shard", shard)
					stop(shard)
				}
			}
			for _, shard := range want {
				if t := draining[shard]; t != nil {
					select {
					case <-t.done:
						delete(draining, shard)
					default:
						continue // the same owner must not hold a shard twice: wait for the old term
					}
				}
				if running[shard] == nil {
					running[shard] = r.startShard(ctx, &wg, shard)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
			continue
		}
		break
	}
	for shard := range running {
		stop(shard)
	}
	wg.Wait()
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = members.Leave(lctx)
	return nil
}

// wantedShards heartbeats and returns the shards this instance should hold now.
func (r *Relay) wantedShards(ctx context.Context, members *cql.Members) ([]int, error) {
	hctx, cancel := context.WithTimeout(ctx, r.cfg.LeaseTTL/3)
	defer cancel()
	if err := members.Heartbeat(hctx); err != nil {
		return nil, err
	}
	if legacy, err := cql.Holder(hctx, r.s, LeaseName); err != nil {
		return nil, err
	} else if legacy != "" && legacy != r.lease.Owner() {
		return nil, nil // a relay of an older release publishes the whole outbox
	}
	live, err := members.Live(hctx)
	if err != nil {
		return nil, err
	}
	return ownedShards(live, r.lease.Owner()), nil
}

// startShard runs the lease loop of one shard until its context is cancelled: whenever it
// holds the lease it publishes the shard.
func (r *Relay) startShard(ctx context.Context, wg *sync.WaitGroup, shard int) *shardTerm {
	sctx, cancel := context.WithCancel(ctx)
	t := &shardTerm{cancel: cancel, done: make(chan struct{})}
	lease := cql.NewLease(r.s, shardLeaseName(shard), r.lease.Owner(), r.cfg.LeaseTTL)
	lanes := max(1, r.cfg.Lanes/cql.OutboxShards) // as many lanes in all as one pipeline of the whole outbox
	inFlight := max(100, r.cfg.MaxInFlight/cql.OutboxShards)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(t.done)
		_ = lease.Run(sctx, func(ctx context.Context) error {
			return r.term(ctx, termScope{shards: []int{shard}, fence: lease, recover: shard == 0, lanes: lanes, maxInFlight: inFlight})
		})
	}()
	return t
}

// holding records that a term of the shards (nil: all) started (delta +1) or ended (-1), in
// the leader and shards_held gauges.
func (r *Relay) holding(shards []int, delta int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case shards == nil:
		r.all = delta > 0
	case delta > 0:
		r.held = append(r.held, shards...)
	default:
		for _, s := range shards {
			if i := slices.Index(r.held, s); i >= 0 {
				r.held = slices.Delete(r.held, i, i+1)
			}
		}
	}
	n := len(r.held)
	if r.all {
		n = cql.OutboxShards
	}
	r.metrics.ShardsHeld.Set(float64(n))
	if n > 0 {
		r.metrics.Leader.Set(1)
	} else {
		r.metrics.Leader.Set(0)
	}
}

// Shards returns the outbox shards this instance publishes now, sorted.
func (r *Relay) Shards() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.all {
		out := make([]int, cql.OutboxShards)
		for i := range out {
			out[i] = i
		}
		return out
	}
	out := slices.Clone(r.held)
	slices.Sort(out)
	return out
}

// shardsLabel renders shards for logs ("all" for nil).
func shardsLabel(shards []int) string {
	if shards == nil {
		return "all"
	}
	s := make([]string, len(shards))
	for i, n := range shards {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}
