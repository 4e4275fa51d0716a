package cql

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/config"
	"github.com/ordersys/ordersys/pkg/tlsfiles"
)

// SessionConfig says how to reach the CQL cluster.
type SessionConfig struct {
	// Hosts are host:port contact points.
	Hosts []string
	// Keyspace is the keyspace to use (empty for none, as migrations need before creating it).
	Keyspace string
	// Username and Password enable password authentication when Username is set.
	Username, Password string
	// LocalDC, when set, keeps requests in that datacenter (DC-aware, token-aware routing). It
	// changes routing only, never a consistency level.
	LocalDC string
	// Consistency for reads and writes, e.g. "QUORUM" or "LOCAL_QUORUM".
	Consistency string
	// SerialConsistency is the consistency of the Paxos phase of lightweight transactions (the
	// conditional appends, the intents, the leases): "SERIAL" (default) or "LOCAL_SERIAL".
	// LOCAL_SERIAL lets two data centers each commit a conflicting transaction: only for a
	// deployment that writes from one data center at a time.
	SerialConsistency string
	// Timeout per request (default 10s).
	Timeout time.Duration
	// TLS, when not nil, makes every connection TLS (see SessionTLS).
	TLS *SessionTLS
}

// SessionTLS is how a session verifies the nodes (and, optionally, proves itself to them).
type SessionTLS struct {
	// CAFile holds the CA certificates (PEM) the nodes' certificates must chain to (empty:
	// the system's roots).
	CAFile string
	// CertFile and KeyFile, when set, are the client certificate and key (PEM) for nodes that
	// require client authentication.
	CertFile, KeyFile string
	// SkipHostVerification accepts a node certificate that does not name the host connected
	// to (its chain is still verified). Off by default.
	SkipHostVerification bool
}

// SessionConfigFrom is the session configuration of a service's CQL settings: the one place
// that translates them (hosts, keyspace, credentials, routing, consistencies, TLS). Any TLS
// setting turns TLS on: none of them ever leaves a connection silently in plaintext.
func SessionConfigFrom(c config.CQL) SessionConfig {
	sc := SessionConfig{Hosts: c.Hosts, Keyspace: c.Keyspace, Username: c.Username, Password: c.Password,
		LocalDC: c.LocalDC, Consistency: c.Consistency, SerialConsistency: c.SerialConsistency}
	if c.TLSEnabled || c.TLSCAFile != "" || c.TLSCertFile != "" || c.TLSKeyFile != "" || c.TLSSkipHostVerification {
		sc.TLS = &SessionTLS{CAFile: c.TLSCAFile, CertFile: c.TLSCertFile, KeyFile: c.TLSKeyFile,
			SkipHostVerification: c.TLSSkipHostVerification}
	}
	return sc
}

// ReconnectInterval is how often the driver tries again the nodes it marked down: a dial per
// down node and session, cheap against a minute of refused requests after a network blip.
const ReconnectInterval = time.Second

// NewCluster returns the gocql cluster configuration for cfg.
func NewCluster(cfg SessionConfig) (*gocql.ClusterConfig, error) {
	if len(cfg.Hosts) == 0 {
		return nil, fmt.Errorf("cql: no hosts")
	}
	c := gocql.NewCluster(cfg.Hosts...)
	c.Keyspace = cfg.Keyspace
	c.ProtoVersion = 4
	c.Timeout = cfg.Timeout
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	c.ConnectTimeout = 10 * time.Second
	c.WriteTimeout = c.Timeout
	// A node the driver marked down (its pool or the control connection failed to connect, as
	// during a network blip of a second) is tried again every ReconnectInterval, or when the
	// cluster reports it up, which it never does for a node that did not go down. The driver's
	// 60 s default left every service of the whole-system chaos test failing each request for
	// most of a minute after half a second of reset connections (e2e chaos_network_test.go).
	c.ReconnectInterval = ReconnectInterval
	cons := gocql.Quorum
	var err error
	if cfg.Consistency != "" {
		if cons, err = gocql.ParseConsistencyWrapper(strings.ToUpper(cfg.Consistency)); err != nil {
			return nil, fmt.Errorf("cql: consistency %q: %w", cfg.Consistency, err)
		}
	}
	c.Consistency = cons
	if c.SerialConsistency, err = serialConsistency(cfg.SerialConsistency); err != nil {
		return nil, err
	}
	if cfg.LocalDC != "" {
		c.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(gocql.DCAwareRoundRobinPolicy(cfg.LocalDC))
	} else {
		c.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(gocql.RoundRobinHostPolicy())
	}
	if cfg.Username != "" {
		c.Authenticator = gocql.PasswordAuthenticator{Username: cfg.Username, Password: cfg.Password}
	}
	if t := cfg.TLS; t != nil {
		tc, err := tlsfiles.ClientConfig(t.CAFile, t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cql: TLS files (ORDERSYS_CQL_TLS_CA_FILE, _CERT_FILE, _KEY_FILE): %w", err)
		}
		if t.SkipHostVerification {
			tlsfiles.SkipHostVerification(tc)
		}
		c.SslOpts = &gocql.SslOptions{Config: tc, EnableHostVerification: !t.SkipHostVerification}
	}
	// Writes are retried by the application (which knows whether they are idempotent); reads
	// may be retried by the driver.
	c.RetryPolicy = &gocql.SimpleRetryPolicy{NumRetries: 2}
	return c, nil
}

// DefaultSerialConsistency is the serial consistency when none is configured.
const DefaultSerialConsistency = "SERIAL"

// serialConsistency parses a serial consistency name (empty: DefaultSerialConsistency).
func serialConsistency(name string) (gocql.SerialConsistency, error) {
	if name == "" {
		name = DefaultSerialConsistency
	}
	switch strings.ToUpper(name) {
	case "SERIAL":
		return gocql.Serial, nil
	case "LOCAL_SERIAL":
		return gocql.LocalSerial, nil
	}
	return 0, fmt.Errorf("cql: serial consistency %q: want SERIAL or LOCAL_SERIAL", name)
}

// Connect opens a session.
func Connect(cfg SessionConfig) (*gocql.Session, error) {
	c, err := NewCluster(cfg)
	if err != nil {
		return nil, err
	}
	s, err := c.CreateSession()
	if err != nil {
		return nil, fmt.Errorf("cql: connect to %s%s: %w", strings.Join(cfg.Hosts, ","), connectHint(err, cfg), err)
	}
	return s, nil
}

// connectHint names the settings a refused connection points at: the credentials when the node
// refused them (or asked for them), the TLS settings when the handshake failed. gocql formats
// these causes into its own error text, so they are recognised by their words.
func connectHint(err error, cfg SessionConfig) string {
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "password") || strings.Contains(msg, "authenticat") || strings.Contains(msg, "credentials"):
		if cfg.Username == "" {
			return ": the node requires a login, set ORDERSYS_CQL_USERNAME and ORDERSYS_CQL_PASSWORD"
		}
		return ": the node refused the login of ORDERSYS_CQL_USERNAME / ORDERSYS_CQL_PASSWORD"
	case strings.Contains(msg, "x509") || strings.Contains(msg, "tls:") || strings.Contains(msg, "certificate"):
		return ": TLS handshake failed, check ORDERSYS_CQL_TLS_CA_FILE, _CERT_FILE, _KEY_FILE, _SKIP_HOST_VERIFICATION"
	}
	return ""
}

// Ping runs a trivial query (system.local at consistency ONE) to check that the cluster answers;
// a failure is es.ErrUnavailable.
func Ping(ctx context.Context, s *gocql.Session) error {
	var v string
	if err := s.Query(`SELECT release_version FROM system.local`).WithContext(ctx).Consistency(gocql.One).Scan(&v); err != nil {
		return fmt.Errorf("cql ping: %w", Unavailable(err))
	}
	return nil
}
