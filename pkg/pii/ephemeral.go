package pii

import (
	"os"
	"path/filepath"

	"github.com/gocql/gocql"
)

// Ephemeral returns a store on session with a fresh KEK that lives in memory only, for tests:
// what it wraps no other process can open.
func Ephemeral(s *gocql.Session, opts Options) (*Store, error) {
	b, err := GenerateKEK()
	if err != nil {
		return nil, err
	}
	k, err := ParseKEK(b)
	if err != nil {
		return nil, err
	}
	return NewStore(s, k, opts), nil
}

// EphemeralFile is Ephemeral with the KEK also written (mode 0600) to kekFile in a new
// temporary folder, for tests that run a service reading it (ORDERSYS_PII_KEK_FILE): what the
// store wraps, the service opens. The caller removes the folder.
func EphemeralFile(s *gocql.Session, opts Options) (st *Store, kekFile string, err error) {
	b, err := GenerateKEK()
	if err != nil {
		return nil, "", err
	}
	k, err := ParseKEK(b)
	if err != nil {
		return nil, "", err
	}
	dir, err := os.MkdirTemp("", "ordersys-kek-")
	if err != nil {
		return nil, "", err
	}
	kekFile = filepath.Join(dir, "kek.json")
	if err := os.WriteFile(kekFile, b, 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, "", err
	}
	return NewStore(s, k, opts), kekFile, nil
}
