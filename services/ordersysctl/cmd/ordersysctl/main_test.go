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
