package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTokenIsNeverSentInPlaintext: a token without -ca is refused before any connection, unless
// -insecure-token says so.
func TestTokenIsNeverSentInPlaintext(t *testing.T) {
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"-relay", "127.0.0.1:1", "-token-file", token, "relay", "status"}, &out, &errOut); code != exitUsage ||
		!strings.Contains(errOut.String(), "-ca") {
		t.Fatalf("exit %d, stderr %q: want %d and a hint about -ca", code, errOut.String(), exitUsage)
	}
	errOut.Reset()
	// Allowed explicitly, it gets as far as dialling (nothing listens: unavailable).
	if code := run([]string{"-relay", "127.0.0.1:1", "-timeout", "2s", "-insecure-token", "-token-file", token, "relay", "status"}, &out, &errOut); code != exitUnavailable {
		t.Fatalf("with -insecure-token: exit %d (%s), want %d", code, errOut.String(), exitUnavailable)
	}
}

// TestPIIKEKFile: pii-kek new writes a KEK file (0600) and refuses to overwrite one; rotate adds
// a primary key; drop-old leaves only the primary.
func TestPIIKEKFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kek.json")
	do := func(args ...string) (string, int) {
		var out, errOut bytes.Buffer
		code := run(args, &out, &errOut)
		return out.String() + errOut.String(), code
	}
	for _, step := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"pii-kek", "new", path}, 0, "KEK with 1 key(s)"},
		{[]string{"pii-kek", "new", path}, 1, "exists"},
		{[]string{"pii-kek", "rotate", path}, 0, "KEK with 2 key(s)"},
		{[]string{"pii-kek", "drop-old", path}, 0, "KEK with 1 key(s)"},
	} {
		if out, code := do(step.args...); code != step.code || !strings.Contains(out, step.want) {
			t.Fatalf("%v: exit %d, %s; want exit %d and %q", step.args, code, out, step.code, step.want)
		}
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("KEK file mode: %v, %v", st, err)
	}
}
