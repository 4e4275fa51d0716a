package tlsfiles

import (
	"os"
	"sync"
	"time"
)

// reloadCheckInterval is how often, at most, the files of a reloading value are checked for
// changes.
const reloadCheckInterval = time.Second

// Reloading holds a value built from files (a server's TLS configuration, a client certificate,
// a JWKS key set) and builds it again when one of them changed: Get checks the files' modification times at most
// once per reloadCheckInterval, so a rotation needs no restart, and a rebuild that fails (a
// rotation that left broken files) keeps the last good value.
type Reloading[T any] struct {
	paths []string // empty entries are skipped
	// build reads the files; statErr wraps an error of os.Stat on one of them.
	build   func() (T, error)
	statErr func(error) error

	mu      sync.Mutex
	value   T
	mtimes  []time.Time
	checked time.Time
}

// NewReloading builds the value from the files at paths (empty entries are skipped) with build;
// an error of os.Stat on one of them is wrapped by statErr.
func NewReloading[T any](paths []string, build func() (T, error), statErr func(error) error) (*Reloading[T], error) {
	r := &Reloading[T]{paths: paths, build: build, statErr: statErr}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.loadLocked(); err != nil {
		return nil, err
	}
	return r, nil
}

// Get returns the value, rebuilding it first when a file changed.
func (r *Reloading[T]) Get() T {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= reloadCheckInterval {
		r.checked = now
		if r.changed() {
			_ = r.loadLocked() // on failure the last good value stays
		}
	}
	return r.value
}

func (r *Reloading[T]) changed() bool {
	for i, p := range r.paths {
		if p == "" {
			continue
		}
		if st, err := os.Stat(p); err == nil && !st.ModTime().Equal(r.mtimes[i]) {
			return true
		}
	}
	return false
}

func (r *Reloading[T]) loadLocked() error {
	mtimes := make([]time.Time, len(r.paths))
	for i, p := range r.paths {
		if p == "" {
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return r.statErr(err)
		}
		mtimes[i] = st.ModTime()
	}
	v, err := r.build()
	if err != nil {
		return err
	}
	r.value, r.mtimes = v, mtimes
	return nil
}
