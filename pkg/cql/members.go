package cql

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/gocql/gocql"
)

// Members is a group of live instances (the relay_members table): each instance announces
// itself with Heartbeat at least every TTL/3; the row of an instance that stops doing so
// expires after ttl.
type Members struct {
	s     *gocql.Session
	name  string
	owner string
	ttl   time.Duration
}

// NewMembers returns owner's handle on the group name.
func NewMembers(s *gocql.Session, name, owner string, ttl time.Duration) *Members {
	return &Members{s: s, name: name, owner: owner, ttl: ttl}
}

// Heartbeat writes this instance's row, alive for the TTL.
func (m *Members) Heartbeat(ctx context.Context) error {
	secs := int((m.ttl + time.Second - 1) / time.Second)
	if err := m.s.Query(`INSERT INTO relay_members (name, owner, seen_at) VALUES (?, ?, ?) USING TTL ?`,
		m.name, m.owner, time.Now().UTC(), secs).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("heartbeat of %s in %s: %w", m.owner, m.name, UnavailableIn(ctx, err))
	}
	return nil
}

// Live returns the owners whose rows have not expired, sorted.
func (m *Members) Live(ctx context.Context) ([]string, error) {
	iter := m.s.Query(`SELECT owner FROM relay_members WHERE name = ?`, m.name).WithContext(ctx).Iter()
	var out []string
	var owner string
	for iter.Scan(&owner) {
		out = append(out, owner)
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("members of %s: %w", m.name, UnavailableIn(ctx, err))
	}
	slices.Sort(out)
	return out, nil
}

// Leave deletes this instance's row (a graceful stop: the others take its share at once).
func (m *Members) Leave(ctx context.Context) error {
	if err := m.s.Query(`DELETE FROM relay_members WHERE name = ? AND owner = ?`, m.name, m.owner).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("leave %s: %w", m.name, UnavailableIn(ctx, err))
	}
	return nil
}

// Holder returns the owner of the lease name ("" when nobody holds it).
func Holder(ctx context.Context, s *gocql.Session, name string) (string, error) {
	var owner string
	err := s.Query(`SELECT owner FROM leases WHERE name = ?`, name).WithContext(ctx).Scan(&owner)
	if err == gocql.ErrNotFound {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("holder of lease %s: %w", name, UnavailableIn(ctx, err))
	}
	return owner, nil
}
