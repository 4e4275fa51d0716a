package e2e_test

import (
	"sort"
	"testing"

	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/kafka/kafkatest"
)

// startSecureKafka starts a private broker that only speaks SASL_SSL and points the secure
// system at it (SCRAM-SHA-512 over TLS, verified against the broker's CA); the SASL password
// joins the secrets no log may show.
func startSecureKafka(t *testing.T, s *system) {
	t.Helper()
	b := kafkatest.StartSecure(t)
	env := b.Env(okafka.SASLScramSHA512)
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s.extraEnv = append(s.extraEnv, k+"="+env[k])
	}
	s.brokers = []string{b.Addr()}
	s.secure.secrets["the Kafka SASL password"] = kafkatest.Password
}
