// Package tlsfiles builds TLS settings from PEM files, the one way the gRPC servers and clients
// (pkg/grpcx), the CQL sessions (pkg/cql) and the Kafka clients (pkg/kafka) read certificates.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// CertPool reads the PEM certificates of file.
func CertPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls: %s holds no PEM certificate", file)
	}
	return pool, nil
}

// ClientConfig returns a client configuration (TLS 1.2 or later) that trusts the CAs of caFile
// (empty: the system's roots) and, when certFile or keyFile is set, presents that certificate,
// read again on the next handshake after the files change (a certificate renewed by
// cert-manager needs no restart; the CA file is read once).
func ClientConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := CertPool(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		cert, err := NewReloading([]string{certFile, keyFile}, func() (tls.Certificate, error) {
			cert, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				return tls.Certificate{}, fmt.Errorf("tls: client certificate %s with key %s: %w", certFile, keyFile, err)
			}
			return cert, nil
		}, func(err error) error { return fmt.Errorf("tls: client certificate: %w", err) })
		if err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c := cert.Get()
			return &c, nil
		}
	}
	return cfg, nil
}

// SkipHostVerification makes cfg accept a server certificate that does not name the host dialled
// while still verifying its chain against cfg.RootCAs (nil: the system's roots).
func SkipHostVerification(cfg *tls.Config) {
	roots := cfg.RootCAs
	cfg.InsecureSkipVerify = true //nolint:gosec // VerifyPeerCertificate verifies the chain
	cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		return verifyChain(raw, roots)
	}
}

// verifyChain checks that the presented certificates chain to roots (nil: the system's), without
// a host name.
func verifyChain(raw [][]byte, roots *x509.CertPool) error {
	if len(raw) == 0 {
		return fmt.Errorf("tls: the server presented no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, der := range raw {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("tls: server certificate: %w", err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
		return fmt.Errorf("tls: server certificate: %w", err)
	}
	return nil
}
