package es

import "time"

// Snapshot is an aggregate's state at one version, encoded with its own schema version, so that
// loading reads the newest snapshot plus the events after it instead of the whole stream.
type Snapshot struct {
	// AggregateID is the aggregate the snapshot belongs to.
	AggregateID string
	// AggregateType names the aggregate kind.
	AggregateType string
	// Version is the aggregate version the state corresponds to.
	Version int64
	// SchemaVersion is the version of the State encoding.
	SchemaVersion int32
	// State is the encoded aggregate state.
	State []byte
	// TakenAt is when the snapshot was made.
	TakenAt time.Time
}

// SnapshotCodec turns one aggregate kind into snapshot state and back. Restore must return an
// aggregate at the snapshot's version, or an error (callers then fall back to full replay) when
// the schema version is unknown.
type SnapshotCodec interface {
	// SchemaVersion is the version new snapshots are written with.
	SchemaVersion() int32
	// Take encodes the aggregate's state.
	Take(a Aggregate) ([]byte, error)
	// Restore rebuilds the aggregate from a snapshot.
	Restore(s Snapshot) (Aggregate, error)
}

// SnapshotDue reports whether appending events that move an aggregate from version before to
// version after crosses a multiple of every (every <= 0 disables snapshots).
func SnapshotDue(before, after int64, every int) bool {
	if every <= 0 {
		return false
	}
	return after/int64(every) > before/int64(every)
}

// SnapshotTail is how many of a stream's last events a load reads beside its newest snapshot
// (EventStore.LoadLast) when snapshots are taken as SnapshotDue says: after a snapshot come at
// most every-1 events plus the rest of the append that crossed the interval, which
// snapshotTailSlack leaves room for. A longer tail (a snapshot that failed to save) costs the
// load a second read, not a wrong state.
func SnapshotTail(every int) int { return every + snapshotTailSlack }

// snapshotTailSlack bounds the events of one append beyond the one that crossed the interval.
const snapshotTailSlack = 16
