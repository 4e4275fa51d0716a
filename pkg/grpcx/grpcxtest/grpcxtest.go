// Package grpcxtest adapts pkg/devpki to tests: a throw-away CA and a token issuer in the
// test's temporary folder, failing the test on any error.
package grpcxtest

import (
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/devpki"
)

// PKI is a CA whose files live in a test's temporary folder.
type PKI struct {
	t testing.TB
	*devpki.PKI
	dir string
}

// NewPKI makes the CA (ca.pem), valid for an hour.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	p, err := devpki.NewPKI(dir, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &PKI{t: t, PKI: p, dir: dir}
}

// Issue writes name.pem and name-key.pem (a server or a client certificate) and returns the
// serial number.
func (p *PKI) Issue(t testing.TB, name string, server bool) int64 {
	t.Helper()
	serial, err := p.PKI.Issue(name, server)
	if err != nil {
		t.Fatal(err)
	}
	return serial
}

// Issuer signs tokens for tests.
type Issuer struct {
	*devpki.Issuer
}

// NewIssuer makes a signing key with id kid and its JWKS file in dir.
func NewIssuer(t testing.TB, dir, kid string) *Issuer {
	t.Helper()
	i, err := devpki.NewIssuer(dir, kid)
	if err != nil {
		t.Fatal(err)
	}
	return &Issuer{i}
}

// Token signs a token for sub and aud, expiring at exp, with the roles.
func (i *Issuer) Token(t testing.TB, sub, aud string, exp time.Time, roles ...string) string {
	t.Helper()
	tok, err := i.Issuer.Token(sub, aud, exp, roles...)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
