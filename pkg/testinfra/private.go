package testinfra

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
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

// Listen returns a listener on a free loopback port (a server under test binds it in advance).
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// FreePort returns a loopback TCP port that nothing listened on a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln := Listen(t)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// FreePortOnAll returns a TCP port free on 127.0.0.1 and on each of hosts (other loopback
// addresses such as 127.0.0.2), for servers of one cluster that listen on the same port at
// different addresses.
func FreePortOnAll(t testing.TB, hosts ...string) int {
	t.Helper()
	for range 50 {
		p := FreePort(t)
		free := true
		for _, h := range hosts {
			ln, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(p)))
			if err != nil {
				free = false
				break
			}
			ln.Close()
		}
		if free {
			return p
		}
	}
	t.Fatalf("testinfra: no port free on 127.0.0.1 and %v", hosts)
	return 0
}
