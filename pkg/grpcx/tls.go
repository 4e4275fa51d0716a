package grpcx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"

	"google.golang.org/grpc/credentials"

	"github.com/ordersys/ordersys/pkg/tlsfiles"
)

// TLSFiles names the PEM files of a TLS server: its certificate chain and key and, for mutual
// TLS, the CAs that sign client certificates.
type TLSFiles struct {
	// CertFile and KeyFile are the server's certificate chain and private key.
	CertFile, KeyFile string
	// ClientCAFile, when set, requires every client to present a certificate signed by one
	// of its CAs.
	ClientCAFile string
}

// ServerCredentials returns transport credentials serving the files, or an error naming the
// file that cannot be used.
func (f TLSFiles) ServerCredentials() (credentials.TransportCredentials, error) {
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, errors.New("tls: both a certificate file and a key file are required")
	}
	// Each handshake gets the newest configuration: a rotated certificate is used without a
	// restart, and a rotation that leaves broken files keeps the last good configuration.
	r, err := tlsfiles.NewReloading([]string{f.CertFile, f.KeyFile, f.ClientCAFile}, f.config,
		func(err error) error { return fmt.Errorf("tls: %w", err) })
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(&tls.Config{
		MinVersion:         tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return r.Get(), nil },
	}), nil
}

// config reads the files into a server configuration.
func (f TLSFiles) config() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: certificate %s with key %s: %w", f.CertFile, f.KeyFile, err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if f.ClientCAFile != "" {
		pool, err := tlsfiles.CertPool(f.ClientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// ClientTLS returns client transport credentials that trust the CAs of caFile (empty: the
// system's roots) and, when certFile and keyFile are set, present that client certificate.
func ClientTLS(caFile, certFile, keyFile string) (credentials.TransportCredentials, error) {
	cfg, err := tlsfiles.ClientConfig(caFile, certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(cfg), nil
}

// BearerToken sends Token in the authorization header of every call of a client connection
// (grpc.WithPerRPCCredentials); it refuses to do so over a connection without TLS unless
// AllowInsecure.
type BearerToken struct {
	Token         string
	AllowInsecure bool
}

// GetRequestMetadata returns the authorization header.
func (b BearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.Token}, nil
}

// RequireTransportSecurity reports whether the token may only travel over TLS.
func (b BearerToken) RequireTransportSecurity() bool { return !b.AllowInsecure }
