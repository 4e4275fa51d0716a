// Command devsecrets writes the development secrets of `make run-secure` into one folder: a CA
// (ca.pem), a server certificate for 127.0.0.1 and localhost (server.pem, server-key.pem), a
// client certificate (client.pem, client-key.pem), a token signing key's JWKS (dev.jwks.json)
// and a token per role (token-writer, token-reader, token-admin, subject dev-<role>). Every run
// writes new ones. For a developer machine only.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ordersys/ordersys/pkg/devpki"
)

func main() {
	dir := flag.String("dir", ".state/secure", "folder to write into")
	audience := flag.String("audience", "ordersys", "aud of the tokens")
	validity := flag.Duration("validity", 24*time.Hour, "how long the certificates and tokens are valid")
	flag.Parse()
	if err := run(*dir, *audience, *validity); err != nil {
		fmt.Fprintf(os.Stderr, "devsecrets: %v\n", err)
		os.Exit(1)
	}
}

func run(dir, audience string, validity time.Duration) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	p, err := devpki.NewPKI(dir, validity)
	if err != nil {
		return err
	}
	if _, err := p.Issue("server", true); err != nil {
		return err
	}
	if _, err := p.Issue("client", false); err != nil {
		return err
	}
	iss, err := devpki.NewIssuer(dir, "dev")
	if err != nil {
		return err
	}
	for _, role := range []string{"writer", "reader", "admin"} {
		tok, err := iss.Token("dev-"+role, audience, time.Now().Add(validity), role)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "token-"+role), []byte(tok+"\n"), 0o600); err != nil {
			return err
		}
	}
	fmt.Printf("devsecrets: CA, certificates, JWKS and tokens (writer, reader, admin) in %s, valid %s\n", dir, validity)
	return nil
}
