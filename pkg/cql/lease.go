package cql

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
)

const defaultMigrationLeaseTTL = 60 * time.Second

// ErrLeaseLost is returned by Lease.Run's context cause when the lease could not be renewed.
var ErrLeaseLost = errors.New("lease lost")

// Lease is a named lock held by at most one owner at a time, kept in the leases table with a
// lightweight transaction and a TTL: a holder that dies releases it when the TTL runs out.
type Lease struct {
	session *gocql.Session
	name    string
	owner   string
	ttl     time.Duration
	held    atomic.Bool
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
func (l *Lease) Held() bool { return l.held.Load() }

func (l *Lease) ttlSeconds() int { return int((l.ttl + time.Second - 1) / time.Second) }

// TryAcquire takes the lease if it is free, or renews it if this owner holds it.
func (l *Lease) TryAcquire(ctx context.Context) (bool, error) {
	m := map[string]any{}
	applied, err := l.session.Query(`INSERT INTO leases (name, owner, acquired_at) VALUES (?, ?, ?) IF NOT EXISTS USING TTL ?`,
		l.name, l.owner, time.Now().UTC(), l.ttlSeconds()).WithContext(ctx).MapScanCAS(m)
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", l.name, err)
	}
	if applied {
		l.held.Store(true)
		return true, nil
	}
	if owner, _ := m["owner"].(string); owner == l.owner {
		return l.Renew(ctx)
	}
	l.held.Store(false)
	return false, nil
}

// Renew extends the lease if this owner still holds it.
func (l *Lease) Renew(ctx context.Context) (bool, error) {
	m := map[string]any{}
	applied, err := l.session.Query(`UPDATE leases USING TTL ? SET owner = ?, acquired_at = ? WHERE name = ? IF owner = ?`,
		l.ttlSeconds(), l.owner, time.Now().UTC(), l.name, l.owner).WithContext(ctx).MapScanCAS(m)
	if err != nil {
		return false, fmt.Errorf("renew lease %s: %w", l.name, err)
	}
	l.held.Store(applied)
	return applied, nil
}

// Release gives the lease up if this owner holds it.
func (l *Lease) Release(ctx context.Context) error {
	l.held.Store(false)
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
// ErrLeaseLost) as soon as a renewal fails, and renews every third of the TTL until work returns
// or ctx ends; then it releases the lease. When work returns because the lease was lost, Run
// waits for it again, so a standby instance keeps trying to take over.
func (l *Lease) Run(ctx context.Context, work func(ctx context.Context) error) error {
	for ctx.Err() == nil {
		if err := l.Wait(ctx); err != nil {
			return nil
		}
		workCtx, cancel := context.WithCancelCause(ctx)
		done := make(chan error, 1)
		go func() { done <- work(workCtx) }()
		ticker := time.NewTicker(l.ttl / 3)
		var werr error
	hold:
		for {
			select {
			case werr = <-done:
				break hold
			case <-ticker.C:
				rctx, rcancel := context.WithTimeout(ctx, l.ttl/3)
				ok, err := l.Renew(rctx)
				rcancel()
				if !ok {
					cancel(fmt.Errorf("%w: %s (renew: %v)", ErrLeaseLost, l.name, err))
					werr = <-done
					break hold
				}
			}
		}
		ticker.Stop()
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
