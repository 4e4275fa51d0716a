package cql

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
)

const defaultMigrationLeaseTTL = 60 * time.Second

// ErrLeaseLost is returned by Lease.Run's context cause when the lease could not be renewed.
var ErrLeaseLost = errors.New("lease lost")

// Lease is a named lock held by at most one owner at a time, kept in the leases table with a
// lightweight transaction and a TTL: a holder that dies releases it when the TTL runs out.
//
// A holder also knows, by its own monotonic clock, until when its hold is certain (Valid): the
// row's TTL starts when the server applies the write, after the request left, so the hold lasts
// at least the TTL from the moment the acquire or renewal was sent. A holder that was paused (a
// long GC or VM pause, SIGSTOP) past that moment must stop acting as the holder before anything
// else, whether or not its renewal has failed yet: another instance may hold the lease by now.
type Lease struct {
	session *gocql.Session
	name    string
	owner   string
	ttl     time.Duration

	mu    sync.Mutex
	until time.Time // end of the certain hold (monotonic reading); zero when not held
}

// certain is how long after a grant was sent the hold is certain. The server expires the row at
// the whole second of its apply time plus the TTL in seconds (Cassandra and ScyllaDB count
// expiry in seconds, from the current second), so the row lives at least TTL − 1 s after the
// server applied the write, which is after it was sent; less TTL/20 for clock-rate differences
// between this process and the nodes. (Counting the whole TTL, as a first version did, let a
// 2 s lease be taken over 1.5 s after its grant while its holder counted on 1.8 s.)
func (l *Lease) certain() time.Duration {
	return time.Duration(l.ttlSeconds()-1)*time.Second - l.ttl/20
}

// renewEvery is the renewal interval: three renewals within the certain hold.
func (l *Lease) renewEvery() time.Duration { return min(l.ttl/3, l.certain()/3) }

// ValidUntil returns when the certain hold ends (zero when not held).
func (l *Lease) ValidUntil() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.until
}

// Valid reports whether this owner certainly holds the lease now: the last acquire or renewal
// succeeded and was sent less than certain() (TTL − 1 s − TTL/20) ago.
func (l *Lease) Valid() bool {
	until := l.ValidUntil()
	return !until.IsZero() && time.Now().Before(until)
}

// granted records a successful acquire or renewal sent at sent.
func (l *Lease) granted(sent time.Time) {
	l.mu.Lock()
	l.until = sent.Add(l.certain())
	l.mu.Unlock()
}

// lost records that the hold is not (or no longer certainly) ours.
func (l *Lease) lost() {
	l.mu.Lock()
	l.until = time.Time{}
	l.mu.Unlock()
}

// NewLease returns a lease handle; owner defaults to host name, pid and a random suffix.
func NewLease(session *gocql.Session, name, owner string, ttl time.Duration) *Lease {
	if owner == "" {
		host, _ := os.Hostname()
		owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), uuid.NewString()[:8])
	}
	if ttl < 2*time.Second {
		ttl = 2 * time.Second
	}
	return &Lease{session: session, name: name, owner: owner, ttl: ttl}
}

// Owner returns this handle's owner id.
func (l *Lease) Owner() string { return l.owner }

// Held reports whether the last acquire or renewal succeeded and has not been released.
func (l *Lease) Held() bool { return !l.ValidUntil().IsZero() }

func (l *Lease) ttlSeconds() int { return int((l.ttl + time.Second - 1) / time.Second) }

// TryAcquire takes the lease if it is free, or renews it if this owner holds it.
func (l *Lease) TryAcquire(ctx context.Context) (bool, error) {
	m := map[string]any{}
	sent := time.Now()
	applied, err := l.session.Query(`INSERT INTO leases (name, owner, acquired_at) VALUES (?, ?, ?) IF NOT EXISTS USING TTL ?`,
		l.name, l.owner, sent.UTC(), l.ttlSeconds()).WithContext(ctx).MapScanCAS(m)
	if err != nil {
		l.lost()
		return false, fmt.Errorf("acquire lease %s: %w", l.name, err)
	}
	if applied {
		l.granted(sent)
		return true, nil
	}
	if owner, _ := m["owner"].(string); owner == l.owner {
		return l.Renew(ctx)
	}
	l.lost()
	return false, nil
}

// Renew extends the lease if this owner still holds it.
func (l *Lease) Renew(ctx context.Context) (bool, error) {
	m := map[string]any{}
	sent := time.Now()
	applied, err := l.session.Query(`UPDATE leases USING TTL ? SET owner = ?, acquired_at = ? WHERE name = ? IF owner = ?`,
		l.ttlSeconds(), l.owner, sent.UTC(), l.name, l.owner).WithContext(ctx).MapScanCAS(m)
	if err != nil {
		l.lost()
		return false, fmt.Errorf("renew lease %s: %w", l.name, err)
	}
	if !applied {
		l.lost()
		return false, nil
	}
	l.granted(sent)
	return true, nil
}

// Release gives the lease up if this owner holds it.
func (l *Lease) Release(ctx context.Context) error {
	l.lost()
	_, err := l.session.Query(`DELETE FROM leases WHERE name = ? IF owner = ?`, l.name, l.owner).
		WithContext(ctx).MapScanCAS(map[string]any{})
	if err != nil {
		return fmt.Errorf("release lease %s: %w", l.name, err)
	}
	return nil
}

// Wait blocks until the lease is acquired or ctx ends.
func (l *Lease) Wait(ctx context.Context) error {
	for {
		ok, err := l.TryAcquire(ctx)
		if ok {
			return nil
		}
		wait := l.ttl / 4
		if err != nil {
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(wait):
		}
	}
}

// Run waits for the lease, then calls work with a context that is cancelled (cause
// ErrLeaseLost) as soon as a renewal fails or the certain hold runs out unrenewed (Valid), and
// renews three times within the certain hold (renewEvery) until work returns or ctx ends; then
// it releases the lease.
// Work that acts as the holder should still check Valid right before each such act: after a
// pause, it may run before this cancellation does. When work returns because the lease was lost, Run
// waits for it again, so a standby instance keeps trying to take over.
func (l *Lease) Run(ctx context.Context, work func(ctx context.Context) error) error {
	for ctx.Err() == nil {
		if err := l.Wait(ctx); err != nil {
			return nil
		}
		workCtx, cancel := context.WithCancelCause(ctx)
		done := make(chan error, 1)
		go func() { done <- work(workCtx) }()
		ticker := time.NewTicker(l.renewEvery())
		expiry := time.NewTimer(time.Until(l.ValidUntil()))
		var werr error
	hold:
		for {
			select {
			case werr = <-done:
				break hold
			case <-expiry.C:
				if ctx.Err() != nil {
					continue // ending: wait for work, then release (below)
				}
				if !l.Valid() {
					l.lost()
					cancel(fmt.Errorf("%w: %s: not renewed within its term", ErrLeaseLost, l.name))
					werr = <-done
					break hold
				}
				expiry.Reset(time.Until(l.ValidUntil()))
			case <-ticker.C:
				if ctx.Err() != nil {
					continue // a renewal with a cancelled context would fail and skip the release
				}
				rctx, rcancel := context.WithTimeout(ctx, l.renewEvery())
				ok, err := l.Renew(rctx)
				rcancel()
				if !ok {
					cancel(fmt.Errorf("%w: %s (renew: %v)", ErrLeaseLost, l.name, err))
					werr = <-done
					break hold
				}
				expiry.Reset(time.Until(l.ValidUntil()))
			}
		}
		ticker.Stop()
		expiry.Stop()
		cancel(nil)
		if l.Held() {
			_ = l.Release(context.WithoutCancel(ctx))
		}
		if werr != nil && !errors.Is(werr, context.Canceled) && !errors.Is(werr, ErrLeaseLost) {
			return werr
		}
	}
	return nil
}
