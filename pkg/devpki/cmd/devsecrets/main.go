// Command devsecrets writes the development secrets of `make run-secure` into one folder: a CA
// (ca.pem), a server certificate for 127.0.0.1 and localhost (server.pem, server-key.pem), a
// client certificate (client.pem, client-key.pem), a token signing key's JWKS (dev.jwks.json)
// and a token per role (token-writer, token-reader, token-admin, subject dev-<role>). Every run
// writes new ones. For a developer machine only.
//
// With -compose it also serves deploy/compose.secure.yaml (run it from the repository root, which
// writes .state/secure): the server certificate then also names the compose services the
// containers dial (scylla, redpanda, command, query, cdc-relay, projector) and ScyllaDB's fixed
// address on the compose network (gocql dials a node by its IP address and checks that address
// against the certificate), and it writes the store passwords as env files for compose
// (compose-cql.env, compose-kafka.env, compose-redpanda.env). Those are kept when they already
// exist: the ScyllaDB and Redpanda volumes keep the passwords they were first set up with.
// Without -compose the output is what it always was.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ordersys/ordersys/pkg/devpki"
)

// composeDNSNames are the compose service names that clients dial over TLS in
// deploy/compose.secure.yaml: the stores and the four gRPC services.
var composeDNSNames = []string{"scylla", "redpanda", "command", "query", "cdc-relay", "projector"}

// composeScyllaIP is ScyllaDB's ipv4_address on the compose network of deploy/compose.secure.yaml
// (deploy/check/compose_secure_test.go checks that the two agree).
const composeScyllaIP = "10.231.47.10"

// composeEnvFiles are the env files of -compose, each with the variables it gives a random
// password (hex, so that no shell, CQL or env-file quoting is ever needed).
var composeEnvFiles = []struct {
	name string
	vars []string
}{
	{"compose-cql.env", []string{"ORDERSYS_CQL_PASSWORD"}},
	{"compose-kafka.env", []string{"ORDERSYS_KAFKA_SASL_PASSWORD"}},
	{"compose-redpanda.env", []string{"DEV_REDPANDA_ADMIN_PASSWORD"}},
}

func main() {
	dir := flag.String("dir", ".state/secure", "folder to write into")
	audience := flag.String("audience", "ordersys", "aud of the tokens")
	validity := flag.Duration("validity", 24*time.Hour, "how long the certificates and tokens are valid")
	compose := flag.Bool("compose", false, "also serve deploy/compose.secure.yaml: compose service names in the server certificate, store passwords in compose-*.env")
	flag.Parse()
	files, err := run(*dir, *audience, *validity, *compose)
	if err != nil {
		fmt.Fprintf(os.Stderr, "devsecrets: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("devsecrets: CA, certificates, JWKS and tokens (writer, reader, admin) in %s, valid %s\n", *dir, *validity)
	if *compose {
		fmt.Printf("devsecrets: compose: server certificate also for %s and %s; store passwords in compose-*.env (kept when present)\n",
			strings.Join(composeDNSNames, ", "), composeScyllaIP)
		fmt.Printf("devsecrets: files: %s\n", strings.Join(files, " "))
	}
}

// run writes the secrets into dir and returns the names of the files it wrote or kept there.
func run(dir, audience string, validity time.Duration, compose bool) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p, err := devpki.NewPKI(dir, validity)
	if err != nil {
		return nil, err
	}
	files := []string{"ca.pem"}
	if compose {
		_, err = p.IssueServer("server", composeDNSNames, []net.IP{net.ParseIP(composeScyllaIP)})
	} else {
		_, err = p.Issue("server", true)
	}
	if err != nil {
		return nil, err
	}
	if _, err := p.Issue("client", false); err != nil {
		return nil, err
	}
	files = append(files, "server.pem", "server-key.pem", "client.pem", "client-key.pem")
	iss, err := devpki.NewIssuer(dir, "dev")
	if err != nil {
		return nil, err
	}
	files = append(files, filepath.Base(iss.JWKS))
	for _, role := range []string{"writer", "reader", "admin"} {
		tok, err := iss.Token("dev-"+role, audience, time.Now().Add(validity), role)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "token-"+role), []byte(tok+"\n"), 0o600); err != nil {
			return nil, err
		}
		files = append(files, "token-"+role)
	}
	if compose {
		for _, f := range composeEnvFiles {
			if err := writeEnvFile(filepath.Join(dir, f.name), f.vars); err != nil {
				return nil, err
			}
			files = append(files, f.name)
		}
	}
	return files, nil
}

// writeEnvFile writes NAME=<random password> lines for vars into path (mode 0600), unless path
// already exists: a store initialised with a password keeps it in its data volume.
func writeEnvFile(path string, vars []string) error {
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		return nil
	}
	var b strings.Builder
	for _, v := range vars {
		raw := make([]byte, 16)
		if _, err := rand.Read(raw); err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s=%s\n", v, hex.EncodeToString(raw))
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}
