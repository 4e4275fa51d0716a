// Package esmem is an in-memory es.EventStore: the same contract as the CQL store (it passes
// the estest acceptance suite), for tests of the code above the store that need no server.
// Hooks inject the failures a real store has: an append refused before it ran, and one that
// committed but whose answer was lost (an unknown outcome).
package esmem

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"

	"github.com/ordersys/ordersys/pkg/es"
)

// Store keeps every stream in memory. The zero value is not usable: call New.
type Store struct {
	reg *es.Registry

	// BeforeAppend, when set, runs before an append is applied; an error it returns is
	// returned as is and nothing is written (a store that refused the request, or could not be
	// reached).
	BeforeAppend func(req es.AppendRequest) error
	// AfterAppend, when set, runs after an append was applied; an error it returns is returned
	// although the events are stored (the commit happened, its answer was lost).
	AfterAppend func(req es.AppendRequest) error

	mu      sync.Mutex
	streams map[string]*stream
}

type stream struct {
	aggregateType string
	events        []es.Envelope // encoded: Event is nil, Payload set
	commands      map[string]es.CommandRecord
	snapshots     []es.Snapshot // newest last, at most keptSnapshots
}

// keptSnapshots is how many snapshots of an aggregate are kept (the newest), as in the CQL store.
const keptSnapshots = 3

var _ es.EventStore = (*Store)(nil)

// New returns an empty store that encodes and decodes payloads with reg.
func New(reg *es.Registry) *Store {
	return &Store{reg: reg, streams: map[string]*stream{}}
}

// Append appends req.Events if the aggregate is at req.ExpectedVersion and, for an existing
// aggregate, req.CommandID is not recorded (es.EventStore).
func (s *Store) Append(ctx context.Context, req es.AppendRequest) (es.AppendResult, error) {
	if err := es.PrepareAppend(ctx, s.reg, &req); err != nil {
		return es.AppendResult{}, err
	}
	if s.BeforeAppend != nil {
		if err := s.BeforeAppend(req); err != nil {
			return es.AppendResult{}, err
		}
	}
	res, err := s.apply(req)
	if err != nil {
		return es.AppendResult{}, err
	}
	if s.AfterAppend != nil {
		if err := s.AfterAppend(req); err != nil {
			return es.AppendResult{}, err
		}
	}
	return res, nil
}

func (s *Store) apply(req es.AppendRequest) (es.AppendResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[req.AggregateID]
	version := int64(0)
	if st != nil {
		version = int64(len(st.events))
	}
	switch {
	case req.ExpectedVersion == 0 && version > 0:
		return es.AppendResult{}, fmt.Errorf("create %s %s: %w", req.AggregateType, req.AggregateID, es.ErrAlreadyExists)
	case version != req.ExpectedVersion:
		return es.AppendResult{}, &es.ConflictError{AggregateID: req.AggregateID, Expected: req.ExpectedVersion, Actual: version}
	}
	if st == nil {
		st = &stream{aggregateType: req.AggregateType, commands: map[string]es.CommandRecord{}}
		s.streams[req.AggregateID] = st
	} else if _, recorded := st.commands[req.CommandID]; recorded && req.CommandID != "" {
		return es.AppendResult{}, &es.ConflictError{AggregateID: req.AggregateID, Expected: req.ExpectedVersion, Actual: version,
			CommandRecorded: true}
	}
	res := es.AppendResult{Version: req.ExpectedVersion + int64(len(req.Events))}
	for _, e := range req.Events {
		e.Event = nil
		e.Payload = slices.Clone(e.Payload)
		st.events = append(st.events, e)
		res.EventIDs = append(res.EventIDs, e.EventID)
	}
	for _, id := range req.ForgetCommands {
		delete(st.commands, id)
	}
	if req.CommandID != "" {
		st.commands[req.CommandID] = es.CommandRecord{Fingerprint: req.CommandFingerprint,
			FirstSequence: req.ExpectedVersion + 1, LastSequence: res.Version}
	}
	return res, nil
}

// Record records rec under commandID with the aggregate's stream, unless commandID is
// recorded already (then it fails with a *es.ConflictError whose CommandRecorded is set), and
// drops the ids of forget: what the CQL store's rejection log does for a rejection of an
// existing aggregate. It fails with es.ErrNotFound when the aggregate does not exist.
func (s *Store) Record(aggregateID, commandID string, rec es.CommandRecord, forget []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[aggregateID]
	if st == nil {
		return fmt.Errorf("record command %s on %s: %w", commandID, aggregateID, es.ErrNotFound)
	}
	if _, recorded := st.commands[commandID]; recorded {
		return &es.ConflictError{AggregateID: aggregateID, Expected: rec.LastSequence, Actual: int64(len(st.events)), CommandRecorded: true}
	}
	for _, id := range forget {
		delete(st.commands, id)
	}
	st.commands[commandID] = rec
	return nil
}

// read returns, under the lock, the stream's head and a copy of its events with
// from ≤ sequence ≤ to (none when to < from; to past the head stops at the head).
func (s *Store) read(aggregateID string, from, to int64) (es.StreamHead, []es.Envelope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[aggregateID]
	if st == nil {
		return es.StreamHead{Commands: map[string]es.CommandRecord{}}, nil
	}
	head := es.StreamHead{Version: int64(len(st.events)), Commands: maps.Clone(st.commands)}
	from, to = max(from, 1), min(to, head.Version)
	if from > to {
		return head, nil
	}
	return head, slices.Clone(st.events[from-1 : to])
}

// Load calls fn with the decoded events from sequence from on, folded (es.EventStore).
func (s *Store) Load(ctx context.Context, aggregateID string, from int64, fn func(es.Envelope) error) (es.StreamHead, error) {
	head, envs := s.read(aggregateID, from, math.MaxInt64)
	for _, env := range envs {
		if err := s.reg.DecodeEnvelopeContext(ctx, &env); err != nil {
			return head, fmt.Errorf("load %s: %w", aggregateID, err)
		}
		if err := fn(es.Folded(env)); err != nil {
			return head, err
		}
	}
	return head, nil
}

// LoadLast returns the last n decoded events, folded, with the head read with them
// (es.EventStore).
func (s *Store) LoadLast(ctx context.Context, aggregateID string, n int) ([]es.Envelope, es.StreamHead, error) {
	head, envs := s.read(aggregateID, 1, math.MaxInt64) // one read: the events and the head agree
	envs = envs[max(0, len(envs)-max(n, 1)):]
	for i := range envs {
		if err := s.reg.DecodeEnvelopeContext(ctx, &envs[i]); err != nil {
			return nil, es.StreamHead{}, fmt.Errorf("load %s: %w", aggregateID, err)
		}
		envs[i] = es.Folded(envs[i])
	}
	return envs, head, nil
}

// LoadRange returns the decoded events with from ≤ sequence ≤ to (es.EventStore).
func (s *Store) LoadRange(ctx context.Context, aggregateID string, from, to int64) ([]es.Envelope, error) {
	_, envs := s.read(aggregateID, from, to)
	for i := range envs {
		if err := s.reg.DecodeEnvelopeContext(ctx, &envs[i]); err != nil {
			return nil, fmt.Errorf("load %s: %w", aggregateID, err)
		}
	}
	return envs, nil
}

// Head returns the aggregate's version and recorded commands (es.EventStore).
func (s *Store) Head(_ context.Context, aggregateID string) (es.StreamHead, error) {
	head, _ := s.read(aggregateID, 1, 0) // the head only
	return head, nil
}

// Exists reports whether the aggregate has events (es.EventStore).
func (s *Store) Exists(ctx context.Context, aggregateID string) (bool, error) {
	head, err := s.Head(ctx, aggregateID)
	return head.Version > 0, err
}

// SaveSnapshot keeps the snapshot and drops all but the newest three (es.EventStore).
func (s *Store) SaveSnapshot(_ context.Context, snap es.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[snap.AggregateID]
	if st == nil {
		st = &stream{aggregateType: snap.AggregateType, commands: map[string]es.CommandRecord{}}
		s.streams[snap.AggregateID] = st
	}
	snap.State = slices.Clone(snap.State)
	st.snapshots = slices.DeleteFunc(st.snapshots, func(x es.Snapshot) bool { return x.Version == snap.Version })
	st.snapshots = append(st.snapshots, snap)
	slices.SortFunc(st.snapshots, func(a, b es.Snapshot) int { return cmp.Compare(a.Version, b.Version) })
	if n := len(st.snapshots); n > keptSnapshots {
		st.snapshots = slices.Clone(st.snapshots[n-keptSnapshots:])
	}
	return nil
}

// LatestSnapshot returns the newest snapshot at or below maxVersion (0: any), or
// es.ErrNotFound (es.EventStore).
func (s *Store) LatestSnapshot(_ context.Context, aggregateID string, maxVersion int64) (es.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.streams[aggregateID]; st != nil {
		for i := len(st.snapshots) - 1; i >= 0; i-- {
			if snap := st.snapshots[i]; maxVersion <= 0 || snap.Version <= maxVersion {
				snap.State = slices.Clone(snap.State)
				return snap, nil
			}
		}
	}
	return es.Snapshot{}, fmt.Errorf("snapshot of %s: %w", aggregateID, es.ErrNotFound)
}
