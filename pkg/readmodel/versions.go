package readmodel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/es"
)

// Versions is the row of projection_versions for one projection.
type Versions struct {
	// Projection names the projection.
	Projection string
	// Active is the version readers use (1 when the row does not exist).
	Active int
	// Building is the version a rebuild is filling, 0 when none is.
	Building int
	// Previous is the version that was active before the last switch, 0 when none was.
	Previous int
	// Latest is the highest version ever allocated.
	Latest int
	// SwitchedAt is when Active last changed (zero when it never did).
	SwitchedAt time.Time
}

// Writable returns the versions the projector keeps up to date at now: the active one, the one
// being built, and the previous one until grace has passed since the switch (readers that cached
// the old pointer still read it meanwhile). The result is sorted and has no duplicates.
func (v Versions) Writable(now time.Time, grace time.Duration) []int {
	out := []int{v.Active}
	if v.Building > 0 && v.Building != v.Active {
		out = append(out, v.Building)
	}
	if v.Previous > 0 && v.Previous != v.Active && v.Previous != v.Building && now.Sub(v.SwitchedAt) < grace {
		out = append(out, v.Previous)
	}
	for i := 1; i < len(out); i++ { // at most three entries: insertion sort
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// ErrRebuildConflict reports that projection_versions changed under a rebuild step (another
// rebuild started, finished or was aborted meanwhile).
var ErrRebuildConflict = errors.New("projection versions changed concurrently")

// LoadVersions reads a projection's versions; a missing row means version 1 is active.
func LoadVersions(ctx context.Context, s *gocql.Session, projection string) (Versions, error) {
	return loadVersions(ctx, s, projection, 0)
}

func loadVersions(ctx context.Context, s *gocql.Session, projection string, cons gocql.Consistency) (Versions, error) {
	if _, err := ProjectionTables(projection); err != nil {
		return Versions{}, err
	}
	var active, building, previous, latest *int
	var switched time.Time
	q := s.Query(`SELECT active, building, previous, latest, switched_at FROM `+TableProjectionVersions+` WHERE projection = ?`, projection).WithContext(ctx)
	if cons != 0 {
		q = q.Consistency(cons)
	}
	err := q.Scan(&active, &building, &previous, &latest, &switched)
	v := Versions{Projection: projection, Active: 1, Latest: 1}
	if errors.Is(err, gocql.ErrNotFound) {
		return v, nil
	}
	if err != nil {
		return Versions{}, fmt.Errorf("read versions of %s: %w", projection, cql.UnavailableIn(ctx, err))
	}
	if active != nil && *active > 0 {
		v.Active = *active
	}
	if building != nil {
		v.Building = *building
	}
	if previous != nil {
		v.Previous = *previous
	}
	if latest != nil && *latest > v.Latest {
		v.Latest = *latest
	}
	v.Latest = max(v.Latest, v.Active, v.Building)
	v.SwitchedAt = switched
	return v, nil
}

// ensureVersionsRow creates the projection's row (version 1 active) if it does not exist.
func ensureVersionsRow(ctx context.Context, s *gocql.Session, projection string) error {
	err := s.Query(`INSERT INTO `+TableProjectionVersions+` (projection, active, latest, updated_at) VALUES (?, 1, 1, ?) IF NOT EXISTS`,
		projection, time.Now()).WithContext(ctx).Exec()
	if err != nil {
		return fmt.Errorf("create versions row of %s: %w", projection, err)
	}
	return nil
}

// BeginRebuild starts (or resumes) a rebuild of the projection: when a version is already being
// built it returns it with resumed true; otherwise it allocates the next version, creates its
// tables and records it as building. Projectors that watch projection_versions start filling the
// new version as soon as they see it.
func BeginRebuild(ctx context.Context, s *gocql.Session, projection string) (version int, resumed bool, err error) {
	return BeginRebuildPrepared(ctx, s, projection, nil)
}

// BeginRebuildPrepared is BeginRebuild that calls prepare (when not nil) with a newly allocated
// version once its tables exist and before it is recorded as building, that is before any
// projector starts writing it: a rebuild from the event store positions the new version's
// consumer group there. prepare is not called when a rebuild is resumed; when it fails, the
// version is left allocated but never built (its number is burnt, as by a crash).
func BeginRebuildPrepared(ctx context.Context, s *gocql.Session, projection string, prepare func(ctx context.Context, version int) error) (version int, resumed bool, err error) {
	if err := ensureVersionsRow(ctx, s, projection); err != nil {
		return 0, false, err
	}
	v, err := loadVersions(ctx, s, projection, gocql.Serial)
	if err != nil {
		return 0, false, err
	}
	if v.Building > 0 {
		if err := CreateTables(ctx, s, projection, v.Building); err != nil {
			return 0, false, err
		}
		return v.Building, true, nil
	}
	next := max(v.Active, v.Latest) + 1
	// Allocate the number first, so a crash before the tables exist only burns it.
	applied, err := s.Query(`UPDATE `+TableProjectionVersions+` SET latest = ?, updated_at = ? WHERE projection = ? IF latest = ? AND building = null`,
		next, time.Now(), projection, v.Latest).WithContext(ctx).MapScanCAS(map[string]any{})
	if err != nil {
		return 0, false, fmt.Errorf("allocate version %d of %s: %w", next, projection, err)
	}
	if !applied {
		return 0, false, fmt.Errorf("allocate version %d of %s: %w", next, projection, ErrRebuildConflict)
	}
	if err := CreateTables(ctx, s, projection, next); err != nil {
		return 0, false, err
	}
	if prepare != nil {
		if err := prepare(ctx, next); err != nil {
			return 0, false, fmt.Errorf("prepare version %d of %s: %w", next, projection, err)
		}
	}
	applied, err = s.Query(`UPDATE `+TableProjectionVersions+` SET building = ?, updated_at = ? WHERE projection = ? IF building = null AND latest = ?`,
		next, time.Now(), projection, next).WithContext(ctx).MapScanCAS(map[string]any{})
	if err != nil {
		return 0, false, fmt.Errorf("mark version %d of %s as building: %w", next, projection, err)
	}
	if !applied {
		return 0, false, fmt.Errorf("mark version %d of %s as building: %w", next, projection, ErrRebuildConflict)
	}
	return next, false, nil
}

// Switch makes the building version the active one: readers move to it (within their cache
// time), the formerly active version becomes Previous and stays written for a grace period.
// Call it once the building version has caught up.
func Switch(ctx context.Context, s *gocql.Session, projection string, building int) error {
	v, err := loadVersions(ctx, s, projection, gocql.Serial)
	if err != nil {
		return err
	}
	if v.Building != building {
		return fmt.Errorf("switch %s to version %d: building version is %d: %w", projection, building, v.Building, ErrRebuildConflict)
	}
	applied, err := s.Query(`UPDATE `+TableProjectionVersions+` SET active = ?, previous = ?, building = null, switched_at = ?, updated_at = ? WHERE projection = ? IF building = ? AND active = ?`,
		building, v.Active, time.Now(), time.Now(), projection, building, v.Active).WithContext(ctx).MapScanCAS(map[string]any{})
	if err != nil {
		return fmt.Errorf("switch %s to version %d: %w", projection, building, err)
	}
	if !applied {
		return fmt.Errorf("switch %s to version %d: %w", projection, building, ErrRebuildConflict)
	}
	return nil
}

// AbortRebuild forgets the version being built (its tables stay, unused).
func AbortRebuild(ctx context.Context, s *gocql.Session, projection string, building int) error {
	applied, err := s.Query(`UPDATE `+TableProjectionVersions+` SET building = null, updated_at = ? WHERE projection = ? IF building = ?`,
		time.Now(), projection, building).WithContext(ctx).MapScanCAS(map[string]any{})
	if err != nil {
		return fmt.Errorf("abort rebuild of %s v%d: %w", projection, building, err)
	}
	if !applied {
		return fmt.Errorf("abort rebuild of %s v%d: %w", projection, building, ErrRebuildConflict)
	}
	return nil
}

// ErrUnsafe reports a change of versions refused because it could serve stale data or remove
// tables in use (SwitchBack, DropVersion); the error says why.
var ErrUnsafe = errors.New("not safe")

// SwitchBack makes the previous version of the projection active again (it becomes Previous
// in turn, and both stay written for a grace period from now): an undo of the last switch. It is
// safe only while the previous version is still written, so current: when less than current
// has passed since the switch (the caller passes the projectors' retire grace minus a margin
// for their polling). It is refused (ErrUnsafe) after that, with no previous version, or while
// a rebuild runs.
func SwitchBack(ctx context.Context, s *gocql.Session, projection string, current time.Duration) (Versions, error) {
	v, err := loadVersions(ctx, s, projection, gocql.Serial)
	if err != nil {
		return Versions{}, err
	}
	switch {
	case v.Building > 0:
		return v, fmt.Errorf("switch %s back: %w: a rebuild of version %d runs (abort it first)", projection, ErrUnsafe, v.Building)
	case v.Previous == 0 || v.Previous == v.Active:
		return v, fmt.Errorf("switch %s back: %w: there is no previous version", projection, ErrUnsafe)
	case time.Since(v.SwitchedAt) >= current:
		return v, fmt.Errorf("switch %s back: %w: version %d stopped being written about %s after the switch at %s and may be stale (rebuild instead)",
			projection, ErrUnsafe, v.Previous, current.Round(time.Second), v.SwitchedAt.UTC().Format(time.RFC3339))
	}
	now := time.Now()
	applied, err := s.Query(`UPDATE `+TableProjectionVersions+` SET active = ?, previous = ?, switched_at = ?, updated_at = ? WHERE projection = ? IF active = ? AND previous = ? AND building = null`,
		v.Previous, v.Active, now, now, projection, v.Active, v.Previous).WithContext(ctx).MapScanCAS(map[string]any{})
	if err != nil {
		return v, fmt.Errorf("switch %s back to version %d: %w", projection, v.Previous, err)
	}
	if !applied {
		return v, fmt.Errorf("switch %s back to version %d: %w", projection, v.Previous, ErrRebuildConflict)
	}
	v.Active, v.Previous, v.SwitchedAt = v.Previous, v.Active, now
	return v, nil
}

// DropVersion drops the tables of version of the projection when nothing uses them: not the
// active version, not the one being built, not the previous one until retired has passed since
// the switch (the caller passes the projectors' retire grace plus a margin for their polling;
// the previous version is then forgotten, so nothing switches back to it), and not version 1,
// whose tables are the schema's (created and altered by the migrations). It returns the tables
// dropped (DROP TABLE IF EXISTS: a version whose rebuild crashed before creating them is fine).
// A version never allocated is es.ErrNotFound; one in use ErrUnsafe.
func DropVersion(ctx context.Context, s *gocql.Session, projection string, version int, retired time.Duration) ([]string, error) {
	tables, err := ProjectionTables(projection)
	if err != nil {
		return nil, err
	}
	v, err := loadVersions(ctx, s, projection, gocql.Serial)
	if err != nil {
		return nil, err
	}
	switch {
	case version < 1 || version > v.Latest:
		return nil, fmt.Errorf("drop %s v%d: %w: versions 1 to %d were allocated", projection, version, es.ErrNotFound, v.Latest)
	case version == 1:
		return nil, fmt.Errorf("drop %s v1: %w: its tables are the schema's (migrations)", projection, ErrUnsafe)
	case version == v.Active:
		return nil, fmt.Errorf("drop %s v%d: %w: it is the active version", projection, version, ErrUnsafe)
	case version == v.Building:
		return nil, fmt.Errorf("drop %s v%d: %w: a rebuild is filling it (abort it first)", projection, version, ErrUnsafe)
	case version == v.Previous && time.Since(v.SwitchedAt) < retired:
		return nil, fmt.Errorf("drop %s v%d: %w: it is the previous version, still written (and available to switch back to) until about %s",
			projection, version, ErrUnsafe, v.SwitchedAt.Add(retired).UTC().Format(time.RFC3339))
	case version == v.Previous:
		applied, err := s.Query(`UPDATE `+TableProjectionVersions+` SET previous = null, updated_at = ? WHERE projection = ? IF previous = ? AND active = ?`,
			time.Now(), projection, version, v.Active).WithContext(ctx).MapScanCAS(map[string]any{})
		if err != nil {
			return nil, fmt.Errorf("drop %s v%d: forget it as previous: %w", projection, version, err)
		}
		if !applied {
			return nil, fmt.Errorf("drop %s v%d: %w", projection, version, ErrRebuildConflict)
		}
	}
	var dropped []string
	for _, base := range tables {
		name := TableName(base, version)
		if err := execDDL(ctx, s, `DROP TABLE IF EXISTS `+name); err != nil {
			return dropped, fmt.Errorf("drop table %s: %w", name, err)
		}
		dropped = append(dropped, name)
	}
	if err := s.AwaitSchemaAgreement(ctx); err != nil {
		return dropped, fmt.Errorf("drop %s v%d: schema agreement: %w", projection, version, err)
	}
	return dropped, nil
}

// versionCache resolves a projection's active version, caching it for ttl. When a refresh
// fails, the last known version is used (a read model that cannot read its pointer cannot read
// its tables either, so the error surfaces there).
type versionCache struct {
	s   *gocql.Session
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]cachedVersions
}

type cachedVersions struct {
	v  Versions
	at time.Time
}

func newVersionCache(s *gocql.Session, ttl time.Duration, now func() time.Time) *versionCache {
	return &versionCache{s: s, ttl: ttl, now: now, entries: map[string]cachedVersions{}}
}

// active returns the active version of projection.
func (c *versionCache) active(ctx context.Context, projection string) (int, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[projection]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < c.ttl {
		return e.v.Active, nil
	}
	v, err := LoadVersions(ctx, c.s, projection)
	if err != nil {
		if ok {
			return e.v.Active, nil
		}
		return 0, err
	}
	c.mu.Lock()
	c.entries[projection] = cachedVersions{v: v, at: now}
	c.mu.Unlock()
	return v.Active, nil
}
