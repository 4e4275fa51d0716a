package relay

import (
	"sync"
	"time"
)

// outstanding tracks the commit times of the changes handed to the pipeline and not yet
// settled, so the relay's lag is the age of the oldest event it has read and not published:
// 0 when it is caught up, however long it has been idle.
type outstanding struct {
	mu   sync.Mutex
	open map[*Change]time.Time
}

func newOutstanding() *outstanding { return &outstanding{open: map[*Change]time.Time{}} }

func (o *outstanding) add(c *Change) {
	o.mu.Lock()
	o.open[c] = c.CommittedAt
	o.mu.Unlock()
}

// done forgets c and reports whether it was open (not yet drained at the end of the term).
func (o *outstanding) done(c *Change) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.open[c]
	delete(o.open, c)
	return ok
}

// oldest returns the earliest commit time among the open changes (zero when none). It scans
// them: at most Config.MaxInFlight, once per metrics scrape.
func (o *outstanding) oldest() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	var earliest time.Time
	for _, t := range o.open {
		if t.IsZero() {
			continue // no commit time known
		}
		if earliest.IsZero() || t.Before(earliest) {
			earliest = t
		}
	}
	return earliest
}

// drain forgets every open change and returns how many there were.
func (o *outstanding) drain() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(o.open)
	clear(o.open)
	return n
}
