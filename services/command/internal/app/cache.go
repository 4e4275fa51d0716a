package app

import (
	"container/list"
	"sync"

	"github.com/ordersys/ordersys/pkg/es"
)

// aggCache keeps the most recently used aggregates of a Service, so that the next command on
// one reads only the events appended since (usually none) instead of its snapshot and tail.
//
// A cached aggregate is only read or changed by the holder of its aggregate's lock (keyedMutex),
// and it is never trusted blindly: every command catches it up from the store first, and an
// append based on a stale state fails on the store's version condition.
type aggCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // front: most recently used
	items map[string]*list.Element
}

type cacheItem struct {
	key string
	agg es.Aggregate
}

// newAggCache returns a cache of at most max aggregates; max <= 0 disables caching.
func newAggCache(max int) *aggCache {
	return &aggCache{max: max, order: list.New(), items: map[string]*list.Element{}}
}

func (c *aggCache) get(key string) (es.Aggregate, bool) {
	if c.max <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheItem).agg, true
}

func (c *aggCache) put(key string, agg es.Aggregate) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		el.Value.(*cacheItem).agg = agg
		c.order.MoveToFront(el)
		return
	}
	c.items[key] = c.order.PushFront(&cacheItem{key: key, agg: agg})
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
