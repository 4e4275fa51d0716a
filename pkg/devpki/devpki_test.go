package devpki

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"slices"
	"testing"
	"time"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s: no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ipStrings(ips []net.IP) []string {
	var s []string
	for _, ip := range ips {
		s = append(s, ip.String())
	}
	return s
}

// verifyFor checks the certificate against the CA as a server certificate for host.
func verifyFor(ca, c *x509.Certificate, host string) error {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	_, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}

func TestIssueKeepsLoopbackNames(t *testing.T) {
	dir := t.TempDir()
	p, err := NewPKI(dir, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Issue("server", true); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Issue("client", false); err != nil {
		t.Fatal(err)
	}
	s := readCert(t, p.Path("server.pem"))
	if got := ipStrings(s.IPAddresses); !slices.Equal(got, []string{"127.0.0.1"}) {
		t.Errorf("server IPs = %v, want [127.0.0.1]", got)
	}
	if !slices.Equal(s.DNSNames, []string{"localhost"}) {
		t.Errorf("server DNS names = %v, want [localhost]", s.DNSNames)
	}
	c := readCert(t, p.Path("client.pem"))
	if len(c.DNSNames)+len(c.IPAddresses) != 0 || !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("client certificate: names %v %v, usages %v: want no names, client auth only", c.DNSNames, c.IPAddresses, c.ExtKeyUsage)
	}
}

func TestIssueServerAddsNames(t *testing.T) {
	dir := t.TempDir()
	p, err := NewPKI(dir, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.IssueServer("server", []string{"scylla", "cdc-relay"}, []net.IP{net.ParseIP("10.231.47.10")}); err != nil {
		t.Fatal(err)
	}
	ca := readCert(t, p.Path("ca.pem"))
	s := readCert(t, p.Path("server.pem"))
	if !slices.Equal(s.DNSNames, []string{"localhost", "scylla", "cdc-relay"}) {
		t.Errorf("DNS names = %v, want localhost first, then the extra names", s.DNSNames)
	}
	if got := ipStrings(s.IPAddresses); !slices.Equal(got, []string{"127.0.0.1", "10.231.47.10"}) {
		t.Errorf("IPs = %v, want 127.0.0.1, then the extra address", got)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "scylla", "cdc-relay", "10.231.47.10"} {
		if err := verifyFor(ca, s, host); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	for _, host := range []string{"redpanda", "10.231.47.11"} {
		if err := verifyFor(ca, s, host); err == nil {
			t.Errorf("verify for %s: accepted, want a name mismatch", host)
		}
	}
	if info, err := os.Stat(p.Path("server-key.pem")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("server-key.pem: %v, mode %v: want 0600", err, info.Mode().Perm())
	}
}
