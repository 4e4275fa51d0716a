package app

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/ordersys/ordersys/pkg/readmodel"
)

// contactTTL is how long an OrdersHandler keeps a customer's details (decrypted email and
// name) in memory: no longer than the data-key cache (ORDERSYS_PII_KEY_CACHE_TTL, 30 s by
// default), as docs/privacy.md promises for every cache of personal data.
const contactTTL = 30 * time.Second

// knownContact is a customer's contact row as last seen (found false: there was none), and when
// it was seen.
type knownContact struct {
	c     readmodel.Contact
	found bool
	at    time.Time
}

// contactCache holds the customer details an OrdersHandler last read or wrote, each forgotten
// contactTTL after it was stored: an expired entry is never returned, and it is dropped from
// memory by the next access or by a timer that runs only while the cache is not empty (no
// goroutine outlives the handler for longer than contactTTL). Safe for concurrent use; the
// check of versions and the store are one step (put).
type contactCache struct {
	mu    sync.Mutex
	lru   *simplelru.LRU[string, knownContact] // least recently stored first: entries are read with Peek
	now   func() time.Time
	timer *time.Timer // the next sweep; nil when the cache is empty
}

// newContactCache returns a cache of at most size customers.
func newContactCache(size int) *contactCache {
	l, _ := simplelru.NewLRU[string, knownContact](size, nil) // fails only for a size < 1
	return &contactCache{lru: l, now: time.Now}
}

// get returns the customer's details when they were stored less than contactTTL ago.
func (c *contactCache) get(customerID string) (knownContact, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked()
	return c.lru.Peek(customerID) // Peek: the list stays in the order of storing, oldest first
}

// put stores k as the customer's details unless newer ones are kept already (two lanes may read
// the same contact row at once, and a read may race with the customer's contact write): the
// newest version always wins.
func (c *contactCache) put(customerID string, k knownContact) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked()
	if old, ok := c.lru.Peek(customerID); ok && old.found && (!k.found || old.c.Version > k.c.Version) {
		return
	}
	k.at = c.now()
	c.lru.Add(customerID, k) // moves the customer to the newest end
	if c.timer == nil {
		c.timer = time.AfterFunc(contactTTL, c.sweep)
	}
}

// sweep drops the expired entries and sets the timer for the next one to expire, if any.
func (c *contactCache) sweep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked()
	c.timer = nil
	if _, oldest, ok := c.lru.GetOldest(); ok {
		c.timer = time.AfterFunc(max(contactTTL-c.now().Sub(oldest.at), 0)+time.Millisecond, c.sweep)
	}
}

// expireLocked drops the entries stored contactTTL ago or earlier (the oldest come first).
func (c *contactCache) expireLocked() {
	now := c.now()
	for {
		_, oldest, ok := c.lru.GetOldest()
		if !ok || now.Sub(oldest.at) < contactTTL {
			return
		}
		c.lru.RemoveOldest()
	}
}
