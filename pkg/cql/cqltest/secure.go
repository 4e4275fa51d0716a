package cqltest

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/devpki"
	"github.com/ordersys/ordersys/pkg/testinfra"
)

// SecureNode is a private, single-node Cassandra that speaks only TLS on its native port
// (client_encryption_options) and requires a password (PasswordAuthenticator, superuser
// cassandra/cassandra): the shared node of `make infra-up` stays untouched.
type SecureNode struct {
	// Addr is host:port of its native transport.
	Addr string
	// CAFile is the CA its certificate (for 127.0.0.1 and localhost) chains to.
	CAFile string
	// Username and Password of its superuser.
	Username, Password string
}

// StartSecure starts a SecureNode from the jars `make infra-up` resolved under
// .state/cassandra/lib, on free loopback ports with its data in a temporary folder, and waits
// until a TLS session with the password answers. It is killed when t ends. It fails when Java,
// openssl or the jars are missing.
func StartSecure(t testing.TB) *SecureNode {
	t.Helper()
	if testing.Short() {
		t.Skip("private secure Cassandra: integration test skipped under -short")
	}
	dir := t.TempDir()
	pki, err := devpki.NewPKI(dir, time.Hour)
	if err == nil {
		_, err = pki.Issue("node", true)
	}
	if err != nil {
		t.Fatalf("cqltest: certificates: %v", err)
	}
	// Cassandra reads a PKCS12 keystore; openssl makes it from the PEM files.
	const storePass = "changeit"
	if out, err := exec.Command("openssl", "pkcs12", "-export", "-in", pki.Path("node.pem"), "-inkey", pki.Path("node-key.pem"),
		"-out", filepath.Join(dir, "node.p12"), "-passout", "pass:"+storePass, "-name", "node").CombinedOutput(); err != nil {
		t.Fatalf("cqltest: openssl pkcs12: %v\n%s", err, out)
	}
	cqlPort, storagePort := testinfra.FreePort(t), testinfra.FreePort(t)
	yaml := nodeYAML(t, dir, "127.0.0.1", cqlPort, storagePort)
	yaml = strings.Replace(yaml, "authenticator:\n  class_name: AllowAllAuthenticator", "authenticator:\n  class_name: PasswordAuthenticator", 1)
	if !strings.Contains(yaml, "PasswordAuthenticator") {
		t.Fatal("cqltest: the cassandra.yaml template has no AllowAllAuthenticator block to replace")
	}
	yaml += fmt.Sprintf(`
client_encryption_options:
  enabled: true
  optional: false
  keystore: %s
  keystore_password: %s
  store_type: PKCS12
  require_client_auth: false
`, filepath.Join(dir, "node.p12"), storePass)
	nd := startNode(t, dir, yaml)
	n := &SecureNode{Addr: fmt.Sprintf("127.0.0.1:%d", cqlPort), CAFile: pki.Path("ca.pem"), Username: "cassandra", Password: "cassandra"}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		s, err := cql.Connect(n.SessionConfig())
		if err == nil {
			var v string
			err = s.Query(`SELECT release_version FROM system.local`).WithContext(context.Background()).Scan(&v)
			s.Close()
			if err == nil {
				return n
			}
		}
		if nd.exited() {
			t.Fatalf("cqltest: the secure Cassandra exited: %s", nd.logTail(30))
		}
		if time.Now().After(deadline) {
			t.Fatalf("cqltest: the secure Cassandra did not answer within 3 minutes: %v", err)
		}
		time.Sleep(time.Second)
	}
}

// SessionConfig is a session on the node over TLS (verifying its certificate, host name
// included) with the superuser's password.
func (n *SecureNode) SessionConfig() cql.SessionConfig {
	return cql.SessionConfig{Hosts: []string{n.Addr}, Consistency: "ONE", Timeout: 10 * time.Second,
		Username: n.Username, Password: n.Password, TLS: &cql.SessionTLS{CAFile: n.CAFile}}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
