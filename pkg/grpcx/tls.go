package grpcx

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/ordersys/ordersys/pkg/tlsfiles"
)

// reloadCheckInterval is how often, at most, the certificate files are checked for changes.
const reloadCheckInterval = time.Second

// TLSFiles names the PEM files of a TLS server: its certificate chain and key and, for mutual
// TLS, the CAs that sign client certificates.
type TLSFiles struct {
	// CertFile and KeyFile are the server's certificate chain and private key.
	CertFile, KeyFile string
	// ClientCAFile, when set, requires every client to present a certificate signed by one
	// of its CAs.
	ClientCAFile string
}

// tlsReloader serves the newest configuration built from TLSFiles: each handshake checks (at
// most once per reloadCheckInterval) whether a file changed, and re-reads them if so, so a
// rotated certificate is used without a restart. A rotation that leaves broken files keeps the
// last good configuration.
type tlsReloader struct {
	files TLSFiles
	now   func() time.Time

	mu      sync.Mutex
	cfg     *tls.Config
	mtimes  [3]time.Time
	checked time.Time
}

// ServerCredentials returns transport credentials serving the files, or an error naming the
// file that cannot be used.
func (f TLSFiles) ServerCredentials() (credentials.TransportCredentials, error) {
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, errors.New("tls: both a certificate file and a key file are required")
	}
	r := &tlsReloader{files: f, now: time.Now}
	if _, err := r.load(); err != nil {
		return nil, err
	}
	return credentials.NewTLS(&tls.Config{
		MinVersion:         tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return r.current(), nil },
	}), nil
}

// current returns the configuration, re-reading the files first when one changed.
func (r *tlsReloader) current() *tls.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= reloadCheckInterval {
		r.checked = now
		if r.changed() {
			_, _ = r.loadLocked() // on failure the last good configuration stays
		}
	}
	return r.cfg
}

func (r *tlsReloader) paths() []string {
	return []string{r.files.CertFile, r.files.KeyFile, r.files.ClientCAFile}
}

func (r *tlsReloader) changed() bool {
	for i, p := range r.paths() {
		if p == "" {
			continue
		}
		if st, err := os.Stat(p); err == nil && !st.ModTime().Equal(r.mtimes[i]) {
			return true
		}
	}
	return false
}

func (r *tlsReloader) load() (*tls.Config, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.loadLocked()
}

func (r *tlsReloader) loadLocked() (*tls.Config, error) {
	var mtimes [3]time.Time
	for i, p := range r.paths() {
		if p == "" {
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		mtimes[i] = st.ModTime()
	}
	cert, err := tls.LoadX509KeyPair(r.files.CertFile, r.files.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: certificate %s with key %s: %w", r.files.CertFile, r.files.KeyFile, err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if r.files.ClientCAFile != "" {
		pool, err := tlsfiles.CertPool(r.files.ClientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	r.cfg, r.mtimes = cfg, mtimes
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
