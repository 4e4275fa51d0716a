package testinfra

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// EnvStateDir overrides where `make infra-up` keeps its state (jars, data, logs); a private
// node of a test (cqltest.StartSecure, kafkatest.Start) runs the jars found there.
const EnvStateDir = "INFRA_STATE_DIR"

// RepoRoot finds the repository root (the directory holding go.work) from the working
// directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory")
		}
		dir = parent
	}
}

// StateDir is $INFRA_STATE_DIR, or .state under the repository root.
func StateDir(root string) string {
	if s := os.Getenv(EnvStateDir); s != "" {
		return s
	}
	return filepath.Join(root, ".state")
}

// FreePort returns a loopback TCP port that nothing listened on a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
