package kafka_test

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/ordersys/ordersys/pkg/config"
	"github.com/ordersys/ordersys/pkg/devpki"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
)

const secret = "s3cr3t-kafka-pw"

// TestClusterFrom: no setting is plaintext without SASL; any TLS setting turns TLS on; each SASL
// mechanism is built with its own name; a bad setting is refused with an error naming the
// variable and never showing the password.
func TestClusterFrom(t *testing.T) {
	dir := t.TempDir()
	pki, err := devpki.NewPKI(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	brokers := []string{"127.0.0.1:9093"}
	notPEM := dir + "/not.pem"
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}

	c, err := okafka.ClusterFrom(config.Kafka{Brokers: brokers})
	if err != nil || c.TLS != nil || c.SASL != nil {
		t.Fatalf("no settings: %+v, %v; want plaintext without SASL", c, err)
	}
	for name, k := range map[string]config.Kafka{
		"enabled":                {TLSEnabled: true},
		"CA file":                {TLSCAFile: pki.Path("ca.pem")},
		"skip host verification": {TLSSkipHostVerification: true},
	} {
		k.Brokers = brokers
		if c, err := okafka.ClusterFrom(k); err != nil || c.TLS == nil {
			t.Errorf("%s: TLS %v, %v; want TLS on", name, c.TLS, err)
		}
	}
	for _, m := range []string{okafka.SASLPlain, okafka.SASLScramSHA256, "scram-sha-512"} {
		c, err := okafka.ClusterFrom(config.Kafka{Brokers: brokers, SASLMechanism: m, SASLUsername: "u", SASLPassword: secret})
		if err != nil || c.SASL == nil || !strings.EqualFold(c.SASL.Name(), m) {
			t.Errorf("%s: %+v, %v", m, c.SASL, err)
		}
	}

	for name, tc := range map[string]struct {
		k    config.Kafka
		want string
	}{
		"no brokers":          {config.Kafka{}, "ORDERSYS_KAFKA_BROKERS"},
		"unknown mechanism":   {config.Kafka{Brokers: brokers, SASLMechanism: "GSSAPI", SASLUsername: "u", SASLPassword: secret}, "ORDERSYS_KAFKA_SASL_MECHANISM"},
		"no username":         {config.Kafka{Brokers: brokers, SASLMechanism: "PLAIN", SASLPassword: secret}, "ORDERSYS_KAFKA_SASL_USERNAME"},
		"no password":         {config.Kafka{Brokers: brokers, SASLMechanism: "PLAIN", SASLUsername: "u"}, "ORDERSYS_KAFKA_SASL_PASSWORD"},
		"password, no SASL":   {config.Kafka{Brokers: brokers, SASLUsername: "u", SASLPassword: secret}, "ORDERSYS_KAFKA_SASL_MECHANISM"},
		"missing CA file":     {config.Kafka{Brokers: brokers, TLSCAFile: dir + "/nope.pem"}, "ORDERSYS_KAFKA_TLS_CA_FILE"},
		"key without cert":    {config.Kafka{Brokers: brokers, TLSKeyFile: dir + "/nope.pem"}, "_KEY_FILE"},
		"CA file not PEM":     {config.Kafka{Brokers: brokers, TLSCAFile: notPEM}, "ORDERSYS_KAFKA_TLS_CA_FILE"},
		"SCRAM bad username":  {config.Kafka{Brokers: brokers, SASLMechanism: "SCRAM-SHA-256", SASLUsername: "\u0007", SASLPassword: secret}, "ORDERSYS_KAFKA_SASL_USERNAME"},
		"SCRAM bad password":  {config.Kafka{Brokers: brokers, SASLMechanism: "SCRAM-SHA-512", SASLUsername: "u", SASLPassword: secret + "\u0007"}, "ORDERSYS_KAFKA_SASL_PASSWORD"},
		"mechanism lowercase": {config.Kafka{Brokers: brokers, SASLMechanism: "scram", SASLUsername: "u", SASLPassword: secret}, "ORDERSYS_KAFKA_SASL_MECHANISM"},
	} {
		_, err := okafka.ClusterFrom(tc.k)
		switch {
		case err == nil:
			t.Errorf("%s: accepted", name)
		case !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: %v; want it to name %s", name, err, tc.want)
		case strings.Contains(err.Error(), secret):
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
	}
}

// TestKafkaPasswordNeverLogged: the start-up log line of a service (config.LogValue of its
// configuration) and config.String show ORDERSYS_KAFKA_SASL_PASSWORD as *** and the rest as set.
func TestKafkaPasswordNeverLogged(t *testing.T) {
	var cfg struct {
		config.Common
		Kafka config.Kafka
	}
	if err := config.LoadFrom(&cfg, func(k string) (string, bool) {
		v, ok := map[string]string{"ORDERSYS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "ORDERSYS_KAFKA_SASL_USERNAME": "relay",
			"ORDERSYS_KAFKA_SASL_PASSWORD": secret}[k]
		return v, ok
	}); err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka.SASLPassword != secret {
		t.Fatalf("password not read: %+v", cfg.Kafka)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", config.LogValue(cfg))
	for _, out := range []string{buf.String(), config.String(cfg)} {
		if strings.Contains(out, secret) {
			t.Errorf("the password is shown: %s", out)
		}
		if !strings.Contains(out, "relay") || !strings.Contains(out, config.Mask) {
			t.Errorf("want the username and %s for the password: %s", config.Mask, out)
		}
	}
}
