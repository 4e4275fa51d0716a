package e2e_test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// freeAddr returns 127.0.0.1:<port> of a port free right now.
func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("e2e: no free port: %v", err))
	}
	defer ln.Close()
	return ln.Addr().String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func rel(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

// keepRuns is how many run folders (logs) .state/e2e keeps.
const keepRuns = 5

// liveRuns holds the names of the run folders of the systems this test process has started and
// not stopped yet: pruneRuns never removes them (the shared system's folder holds the binaries
// the other systems run).
var liveRuns sync.Map

// pruneRuns removes all but the newest keep run folders under dir (their names sort by time),
// and never the folder of a system still running.
func pruneRuns(dir string, keep int) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	var runs []string
	for _, e := range entries {
		if _, live := liveRuns.Load(e.Name()); live {
			keep--
			continue
		}
		if e.IsDir() && len(e.Name()) > 8 && e.Name()[0] >= '0' && e.Name()[0] <= '9' {
			runs = append(runs, e.Name())
		}
	}
	sort.Strings(runs)
	for len(runs) > keep {
		_ = os.RemoveAll(filepath.Join(dir, runs[0]))
		runs = runs[1:]
	}
}

// errNotYet marks a condition polled for that has not been reached yet.
var errNotYet = errors.New("not yet")

// eventually calls f until it returns nil or timeout passes; it returns f's last error.
func eventually(timeout, every time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(every)
	}
}
