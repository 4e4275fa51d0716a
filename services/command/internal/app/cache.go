package app

import (
	"container/list"
	"sync"

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
	mu    sync.Mutex
	max   int
	order *list.List // front: most recently used
	items map[string]*list.Element
}

type cacheItem struct {
	key      string
	agg      es.Aggregate
	commands map[string]es.CommandRecord
}

// newAggCache returns a cache of at most max aggregates; max <= 0 disables caching.
func newAggCache(max int) *aggCache {
	return &aggCache{max: max, order: list.New(), items: map[string]*list.Element{}}
}

func (c *aggCache) get(key string) (es.Aggregate, bool) {
	agg, _, ok := c.entry(key)
	return agg, ok
}

// entry returns the cached aggregate and its recorded command ids (owned by the caller until
// the next put: only the lock holder uses them).
func (c *aggCache) entry(key string) (es.Aggregate, map[string]es.CommandRecord, bool) {
	if c.max <= 0 {
		return nil, nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, nil, false
	}
	c.order.MoveToFront(el)
	it := el.Value.(*cacheItem)
	return it.agg, it.commands, true
}

// put caches agg with the command ids recorded with its stream.
func (c *aggCache) put(key string, agg es.Aggregate, commands map[string]es.CommandRecord) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		it := el.Value.(*cacheItem)
		it.agg, it.commands = agg, commands
		c.order.MoveToFront(el)
		return
	}
	c.items[key] = c.order.PushFront(&cacheItem{key: key, agg: agg, commands: commands})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*cacheItem).key)
	}
}

func (c *aggCache) remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.order.Remove(el)
		delete(c.items, key)
	}
}

func (c *aggCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
