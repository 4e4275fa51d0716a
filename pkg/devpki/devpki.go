// Package devpki makes development secrets for secured gRPC servers: a throw-away CA with server
// and client certificates, and a token issuer with its JWKS file and tokens. The tests use it
// (through pkg/grpcx/grpcxtest) and so do `make run-secure` and deploy/compose.secure.yaml
// (cmd/devsecrets). The keys are ECDSA P-256 from the standard library; tokens are signed with
// lestrrat-go/jwx. Never use these secrets outside a developer machine or a test.
package devpki

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
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// PKI is a throw-away CA that issues server certificates for 127.0.0.1 and localhost (and, with
// IssueServer, further names), and client certificates, written as PEM files into one folder.
type PKI struct {
	dir      string
	validity time.Duration
	caKey    *ecdsa.PrivateKey
	caCert   *x509.Certificate
	serial   int64
}

// NewPKI makes the CA (ca.pem) in dir, valid for validity.
func NewPKI(dir string, validity time.Duration) (*PKI, error) {
	p := &PKI{dir: dir, validity: validity, serial: 10}
	var err error
	if p.caKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ordersys development CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(validity)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		return nil, err
	}
	if p.caCert, err = x509.ParseCertificate(der); err != nil {
		return nil, err
	}
	return p, p.write("ca.pem", "CERTIFICATE", der)
}

func (p *PKI) write(name, typ string, der []byte) error {
	return os.WriteFile(filepath.Join(p.dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// Issue writes a certificate (a server's for 127.0.0.1 and localhost, or a client's) signed by
// the CA as name.pem and name-key.pem and returns its serial number.
func (p *PKI) Issue(name string, server bool) (int64, error) {
	return p.issue(name, server, nil, nil)
}

// IssueServer writes a server certificate like Issue(name, true) that also names dnsNames and
// ips (after 127.0.0.1 and localhost), e.g. the service names of a compose file, and returns
// its serial number.
func (p *PKI) IssueServer(name string, dnsNames []string, ips []net.IP) (int64, error) {
	return p.issue(name, true, dnsNames, ips)
}

func (p *PKI) issue(name string, server bool, dnsNames []string, ips []net.IP) (int64, error) {
	p.serial++
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return 0, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(p.validity), KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.IPAddresses = append([]net.IP{net.ParseIP("127.0.0.1")}, ips...)
		tmpl.DNSNames = append([]string{"localhost"}, dnsNames...)
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		return 0, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return 0, err
	}
	if err := p.write(name+".pem", "CERTIFICATE", der); err != nil {
		return 0, err
	}
	return p.serial, p.write(name+"-key.pem", "EC PRIVATE KEY", kder)
}

// Path returns the path of a file written into the PKI's folder, e.g. "ca.pem".
func (p *PKI) Path(name string) string { return filepath.Join(p.dir, name) }

// Issuer signs tokens with a key published in a JWKS file.
type Issuer struct {
	key jwk.Key
	// JWKS is the path of the JWKS file with the public key.
	JWKS string
}

// NewIssuer makes a signing key with id kid and writes its public JWKS into dir as
// <kid>.jwks.json.
func NewIssuer(dir, kid string) (*Issuer, error) {
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	key, err := jwk.Import(raw)
	if err != nil {
		return nil, err
	}
	if err := key.Set(jwk.KeyIDKey, kid); err != nil {
		return nil, err
	}
	if err := key.Set(jwk.AlgorithmKey, jwa.ES256()); err != nil {
		return nil, err
	}
	pub, err := key.PublicKey()
	if err != nil {
		return nil, err
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		return nil, err
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, kid+".jwks.json")
	return &Issuer{key: key, JWKS: path}, os.WriteFile(path, b, 0o600)
}

// IssuerURL is the iss of every token an Issuer signs.
const IssuerURL = "https://issuer.test"

// Token signs a token for sub and aud, expiring at exp, with the roles, issued by IssuerURL.
func (i *Issuer) Token(sub, aud string, exp time.Time, roles ...string) (string, error) {
	tok, err := jwt.NewBuilder().Subject(sub).Issuer(IssuerURL).Audience([]string{aud}).Expiration(exp).
		IssuedAt(time.Now()).Claim("roles", roles).Build()
	if err != nil {
		return "", err
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), i.key))
	return string(signed), err
}
