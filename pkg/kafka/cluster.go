package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/ordersys/ordersys/pkg/config"
	"github.com/ordersys/ordersys/pkg/tlsfiles"
)

// SASL mechanisms (ORDERSYS_KAFKA_SASL_MECHANISM).
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// Names of the settings that errors point at.
const (
	envBrokers   = "ORDERSYS_KAFKA_BROKERS"
	envMechanism = "ORDERSYS_KAFKA_SASL_MECHANISM"
	envUsername  = "ORDERSYS_KAFKA_SASL_USERNAME"
	envPassword  = "ORDERSYS_KAFKA_SASL_PASSWORD"
)

// Cluster says how to reach a Kafka cluster: every client of this package and of the services
// (publishers, readers, consumer groups, topic administration, pings) is built from one. TLS and
// SASL left nil mean plaintext without authentication (a developer machine).
type Cluster struct {
	// Brokers are the bootstrap brokers, host:port.
	Brokers []string
	// TLS, when not nil, makes every connection TLS with these settings.
	TLS *tls.Config
	// SASL, when not nil, authenticates every connection with this mechanism.
	SASL sasl.Mechanism
}

// ClusterFrom is the cluster of a service's Kafka settings: the one place that translates them.
// Any TLS setting turns TLS on (none of them ever leaves a connection silently in plaintext); a
// SASL mechanism needs a username and a password, and a username or password without a mechanism
// is refused rather than ignored. Each error names the variable to fix; the password never
// appears in one.
func ClusterFrom(c config.Kafka) (Cluster, error) {
	cl := Cluster{Brokers: c.Brokers}
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, fmt.Errorf("%s is empty", envBrokers))
	}
	if c.TLSEnabled || c.TLSCAFile != "" || c.TLSCertFile != "" || c.TLSKeyFile != "" || c.TLSSkipHostVerification {
		tc, err := tlsfiles.ClientConfig(c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("ORDERSYS_KAFKA_TLS_CA_FILE, _CERT_FILE, _KEY_FILE: %w", err))
		} else {
			if c.TLSSkipHostVerification {
				tlsfiles.SkipHostVerification(tc)
			}
			cl.TLS = tc
		}
	}
	mech, err := mechanism(c.SASLMechanism, c.SASLUsername, c.SASLPassword)
	if err != nil {
		errs = append(errs, err)
	}
	cl.SASL = mech
	if err := errors.Join(errs...); err != nil {
		return Cluster{}, fmt.Errorf("kafka: %w", err)
	}
	return cl, nil
}

// mechanism returns the SASL mechanism of the settings (nil: none).
func mechanism(name, user, password string) (sasl.Mechanism, error) {
	if name == "" {
		if user != "" || password != "" {
			return nil, fmt.Errorf("%s or %s is set but %s is empty: set it to %s, %s or %s",
				envUsername, envPassword, envMechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
		}
		return nil, nil
	}
	if user == "" || password == "" {
		return nil, fmt.Errorf("%s %s needs %s and %s", envMechanism, name, envUsername, envPassword)
	}
	switch strings.ToUpper(name) {
	case SASLPlain:
		return plain.Mechanism{Username: user, Password: password}, nil
	case SASLScramSHA256, SASLScramSHA512:
		algo := scram.SHA256
		if strings.ToUpper(name) == SASLScramSHA512 {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, user, password)
		if err != nil {
			// SASLprep refused the username or the password; the error shows neither.
			return nil, fmt.Errorf("%s or %s: not valid for %s", envUsername, envPassword, name)
		}
		return m, nil
	}
	return nil, fmt.Errorf("%s %q: want %s, %s or %s", envMechanism, name, SASLPlain, SASLScramSHA256, SASLScramSHA512)
}

// Transport returns a new transport (for kafka-go's Client and Writer) to the cluster; close its
// idle connections when done.
func (c Cluster) Transport() *kafkago.Transport {
	return &kafkago.Transport{TLS: c.TLS, SASL: c.SASL}
}

// Dialer returns a dialer (for kafka-go's Reader, ConsumerGroup and Conn) to the cluster whose
// connection attempts give up after timeout.
func (c Cluster) Dialer(timeout time.Duration) *kafkago.Dialer {
	return &kafkago.Dialer{Timeout: timeout, DualStack: true, TLS: c.TLS, SASLMechanism: c.SASL}
}

// Client returns an administrative client with a transport of its own (a shared transport
// answers metadata requests from its cache, which may not know a topic created a moment ago) and
// the function that closes its connections.
func (c Cluster) Client(timeout time.Duration) (*kafkago.Client, func()) {
	tr := c.Transport()
	return &kafkago.Client{Addr: kafkago.TCP(c.Brokers...), Timeout: timeout, Transport: tr}, tr.CloseIdleConnections
}

// Explain adds to err, when it comes from the cluster's security, which setting to check: a
// refused SASL login names the username and password variables, a mechanism the brokers do not
// enable names the mechanism variable, a broker certificate that does not verify names the TLS
// variables. Other errors are returned as they are.
func (c Cluster) Explain(err error) error {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var verify *tls.CertificateVerificationError
	var recordHeader tls.RecordHeaderError
	var hint string
	switch {
	case err == nil || isSecurity(err):
		return err
	case errors.Is(err, kafkago.SASLAuthenticationFailed):
		hint = "the brokers refused the SASL login: check " + envUsername + " and " + envPassword
	case errors.Is(err, kafkago.UnsupportedSASLMechanism):
		hint = "the brokers do not enable this SASL mechanism: check " + envMechanism
	case errors.As(err, &hostname):
		hint = "the broker certificate does not name the host dialled: check " + envBrokers + " or ORDERSYS_KAFKA_TLS_SKIP_HOST_VERIFICATION"
	case errors.As(err, &unknownCA), errors.As(err, &verify):
		hint = "the broker certificate does not verify: check ORDERSYS_KAFKA_TLS_CA_FILE"
	case errors.As(err, &recordHeader):
		hint = "the broker does not speak TLS: check ORDERSYS_KAFKA_TLS_ENABLED and " + envBrokers
	default:
		return err
	}
	return &securityError{hint: hint, err: err}
}

// securityError is an error Explain recognised: retrying with the same settings does not help.
type securityError struct {
	hint string
	err  error
}

func (e *securityError) Error() string { return "kafka: " + e.hint + ": " + e.err.Error() }
func (e *securityError) Unwrap() error { return e.err }

func isSecurity(err error) bool {
	var se *securityError
	return errors.As(err, &se)
}
