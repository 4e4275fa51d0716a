package app

import (
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/ordersys/ordersys/pkg/es"
)

// aggCache keeps the most recently used aggregates of a Service, so that the next command on
// one reads only the events appended since (usually none) instead of its snapshot and tail.
//
// With each aggregate it keeps the command ids recorded with its stream as last seen (to choose
// the ids an append forgets, see es.CommandsToForget). A cached aggregate is only read or
// changed by the holder of its aggregate's lock (keyedMutex). It may be stale (another replica
// appended since): a command decided on it appends on the condition that the store is still
// at its version and the command id unrecorded, and falls back to a read when it is not (see
// Handler.attempt); reads of another aggregate (a rule's lookup) catch it up first.
type aggCache struct {
	lru *lru.Cache[string, cacheItem] // nil: caching disabled
}

type cacheItem struct {
	agg      es.Aggregate
	commands map[string]es.CommandRecord
}

// newAggCache returns a cache of at most max aggregates; max <= 0 disables caching.
func newAggCache(max int) *aggCache {
	if max <= 0 {
		return &aggCache{}
	}
	c, _ := lru.New[string, cacheItem](max) // fails only for a size < 1
	return &aggCache{lru: c}
}

func (c *aggCache) get(key string) (es.Aggregate, bool) {
	agg, _, ok := c.entry(key)
	return agg, ok
}

// entry returns the cached aggregate and its recorded command ids (owned by the caller until
// the next put: only the lock holder uses them).
func (c *aggCache) entry(key string) (es.Aggregate, map[string]es.CommandRecord, bool) {
	if c.lru == nil {
		return nil, nil, false
	}
	it, ok := c.lru.Get(key)
	return it.agg, it.commands, ok
}

// put caches agg with the command ids recorded with its stream.
func (c *aggCache) put(key string, agg es.Aggregate, commands map[string]es.CommandRecord) {
	if c.lru != nil {
		c.lru.Add(key, cacheItem{agg: agg, commands: commands})
	}
}

func (c *aggCache) remove(key string) {
	if c.lru != nil {
		c.lru.Remove(key)
	}
}
