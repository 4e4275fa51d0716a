// Package grpcxtest makes what tests of secured gRPC servers need: a throw-away CA with server
// and client certificates, and a token issuer with its JWKS file. For tests only.
package grpcxtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// PKI is a throw-away CA with a server certificate for 127.0.0.1 and a client certificate,
// written as PEM files into a temporary folder.
type PKI struct {
	dir    string
	caKey  *ecdsa.PrivateKey
	caCert *x509.Certificate
	serial int64
}

// NewPKI makes the CA (ca.pem) in a temporary folder of t.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	p := &PKI{dir: t.TempDir()}
	p.caKey = mustKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.caCert, _ = x509.ParseCertificate(der)
	p.write(t, "ca.pem", "CERTIFICATE", der)
	p.serial = 10
	return p
}

func mustKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (p *PKI) write(t testing.TB, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Issue writes a certificate (server or client) signed by the CA as name.pem and name-key.pem and
// returns its serial number.
func (p *PKI) Issue(t testing.TB, name string, server bool) int64 {
	t.Helper()
	p.serial++
	key := mustKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.IPAddresses, tmpl.ExtKeyUsage = []net.IP{net.ParseIP("127.0.0.1")}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p.write(t, name+".pem", "CERTIFICATE", der)
	p.write(t, name+"-key.pem", "EC PRIVATE KEY", kder)
	return p.serial
}

// Path returns the path of a file written into the PKI's folder, e.g. "ca.pem".
func (p *PKI) Path(name string) string { return filepath.Join(p.dir, name) }

// Issuer signs tokens with a key published in a JWKS file.
type Issuer struct {
	key jwk.Key
	// JWKS is the path of the JWKS file with the public key.
	JWKS string
}

// NewIssuer makes a signing key with id kid and writes its public JWKS into dir.
func NewIssuer(t testing.TB, dir, kid string) *Issuer {
	t.Helper()
	key, err := jwk.Import(mustKey(t))
	if err != nil {
		t.Fatal(err)
	}
	_ = key.Set(jwk.KeyIDKey, kid)
	_ = key.Set(jwk.AlgorithmKey, jwa.ES256())
	pub, err := key.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, kid+".jwks.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return &Issuer{key: key, JWKS: path}
}

// Token signs a token for sub and aud, expiring at exp, with the roles, issued by
// https://issuer.test.
func (i *Issuer) Token(t testing.TB, sub, aud string, exp time.Time, roles ...string) string {
	t.Helper()
	tok, err := jwt.NewBuilder().Subject(sub).Issuer("https://issuer.test").Audience([]string{aud}).Expiration(exp).
		IssuedAt(time.Now()).Claim("roles", roles).Build()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), i.key))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}
