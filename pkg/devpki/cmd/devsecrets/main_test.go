package main

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// runSecureFiles are the files `make run-secure` has always got from devsecrets.
var runSecureFiles = []string{"ca.pem", "client-key.pem", "client.pem", "dev.jwks.json", "server-key.pem",
	"server.pem", "token-admin", "token-reader", "token-writer"}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		if info, err := e.Info(); err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", e.Name(), info.Mode().Perm())
		}
	}
	return names
}

func serverCert(t *testing.T, dir string) (ca, server *x509.Certificate) {
	t.Helper()
	parse := func(name string) *x509.Certificate {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(raw)
		if block == nil {
			t.Fatalf("%s: no PEM block", name)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return parse("ca.pem"), parse("server.pem")
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// envFile reads NAME=VALUE lines.
func envFile(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: line %q is not NAME=VALUE", path, line)
		}
		vars[k] = v
	}
	return vars
}

func TestRunWithoutComposeIsUnchanged(t *testing.T) {
	dir := t.TempDir()
	files, err := run(dir, "ordersys", time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := sorted(files); !slices.Equal(got, runSecureFiles) {
		t.Errorf("run returned %v, want %v", got, runSecureFiles)
	}
	if got := listDir(t, dir); !slices.Equal(got, runSecureFiles) {
		t.Errorf("wrote %v, want %v", got, runSecureFiles)
	}
	_, s := serverCert(t, dir)
	if !slices.Equal(s.DNSNames, []string{"localhost"}) || len(s.IPAddresses) != 1 || !s.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("server certificate names %v %v, want localhost and 127.0.0.1 only", s.DNSNames, s.IPAddresses)
	}
}

var hexPassword = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestRunCompose(t *testing.T) {
	dir := t.TempDir()
	files, err := run(dir, "ordersys", time.Hour, true)
	if err != nil {
		t.Fatal(err)
	}
	want := sorted(append(slices.Clone(runSecureFiles), "compose-cql.env", "compose-kafka.env", "compose-redpanda.env"))
	if got := sorted(files); !slices.Equal(got, want) {
		t.Errorf("run returned %v, want %v", got, want)
	}
	if got := listDir(t, dir); !slices.Equal(got, want) {
		t.Errorf("wrote %v, want %v (every file it writes is in the list it returns)", got, want)
	}

	ca, s := serverCert(t, dir)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	hosts := append([]string{"localhost", "127.0.0.1", composeScyllaIP}, composeDNSNames...)
	for _, h := range hosts {
		if _, err := s.Verify(x509.VerifyOptions{Roots: roots, DNSName: h, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("server certificate for %s: %v", h, err)
		}
	}

	passwords := map[string]string{}
	for _, f := range composeEnvFiles {
		vars := envFile(t, filepath.Join(dir, f.name))
		if len(vars) != len(f.vars) {
			t.Errorf("%s: %v, want exactly %v", f.name, vars, f.vars)
		}
		for _, v := range f.vars {
			if !hexPassword.MatchString(vars[v]) {
				t.Errorf("%s: %s is not 32 hex digits", f.name, v)
			}
			if other, dup := passwords[vars[v]]; dup {
				t.Errorf("%s and %s have the same password", v, other)
			}
			passwords[vars[v]] = v
		}
	}

	// A second run makes new certificates but keeps the passwords the stores were set up with.
	before, _ := os.ReadFile(filepath.Join(dir, "server.pem"))
	firstCQL := envFile(t, filepath.Join(dir, "compose-cql.env"))
	if _, err := run(dir, "ordersys", time.Hour, true); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "server.pem"))
	if string(before) == string(after) {
		t.Error("server.pem unchanged by a second run, want a new certificate")
	}
	if got := envFile(t, filepath.Join(dir, "compose-cql.env")); got["ORDERSYS_CQL_PASSWORD"] != firstCQL["ORDERSYS_CQL_PASSWORD"] {
		t.Error("compose-cql.env rewritten by a second run, want it kept")
	}
}
