package kafkatest

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/config"
	"github.com/ordersys/ordersys/pkg/devpki"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/testinfra"
)

// The SASL user of a secure broker: the same name and password for PLAIN, SCRAM-SHA-256 and
// SCRAM-SHA-512.
const (
	Username = "ordersys"
	Password = "ordersys-kafka-secret"
)

// Mechanisms are the SASL mechanisms a secure broker enables.
var Mechanisms = []string{okafka.SASLPlain, okafka.SASLScramSHA256, okafka.SASLScramSHA512}

// StartSecure is Start for a broker whose only client listener (Addr) is SASL_SSL: TLS with a
// certificate for 127.0.0.1 and localhost signed by a throw-away CA (CAFile), and SASL with PLAIN,
// SCRAM-SHA-256 and SCRAM-SHA-512 for Username and Password (the SCRAM credentials are written
// when the storage is formatted, `kafka-storage format --add-scram`). Inter-broker and controller
// traffic stay on loopback listeners of their own.
func StartSecure(t testing.TB) *Broker {
	t.Helper()
	return start(t, true)
}

// CAFile is the PEM file of the CA that signed a secure broker's certificate (empty for a
// plaintext broker).
func (b *Broker) CAFile() string {
	if b.secure == nil {
		return ""
	}
	return b.secure.Path("ca.pem")
}

// Env is the ORDERSYS_KAFKA_* environment of a client of the broker: its address and, for a
// secure broker, its CA and the SASL mechanism (one of Mechanisms) with Username and Password.
func (b *Broker) Env(mechanism string) map[string]string {
	env := map[string]string{"ORDERSYS_KAFKA_BROKERS": b.Addr()}
	if b.secure != nil {
		env["ORDERSYS_KAFKA_TLS_CA_FILE"] = b.CAFile()
		env["ORDERSYS_KAFKA_SASL_MECHANISM"] = mechanism
		env["ORDERSYS_KAFKA_SASL_USERNAME"] = Username
		env["ORDERSYS_KAFKA_SASL_PASSWORD"] = Password
	}
	return env
}

// Cluster is the cluster of Env(mechanism), built the way the services build theirs
// (config.Kafka, okafka.ClusterFrom).
func (b *Broker) Cluster(mechanism string) okafka.Cluster {
	b.t.Helper()
	c, err := ClusterOf(b.Env(mechanism))
	if err != nil {
		b.t.Fatalf("kafkatest: %v", err)
	}
	return c
}

// ClusterOf is the cluster the services build from the ORDERSYS_KAFKA_* variables of env.
func ClusterOf(env map[string]string) (okafka.Cluster, error) {
	var kc config.Kafka
	if err := config.LoadFrom(&kc, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		return okafka.Cluster{}, err
	}
	return okafka.ClusterFrom(kc)
}

// ping is the cluster Restart waits for.
func (b *Broker) ping() okafka.Cluster {
	if b.secure == nil {
		return okafka.Cluster{Brokers: []string{b.Addr()}}
	}
	return b.Cluster(okafka.SASLScramSHA512)
}

// secureListener makes the broker's certificate and returns the listener settings of a secure
// broker and the arguments of `format` that create its SCRAM credentials.
func (b *Broker) secureListener() (string, []string, error) {
	pki, err := devpki.NewPKI(b.dir, time.Hour)
	if err == nil {
		_, err = pki.Issue("broker", true)
	}
	if err != nil {
		return "", nil, fmt.Errorf("certificates: %w", err)
	}
	b.secure = pki
	// Kafka reads a PEM key store (ssl.keystore.type=PEM): the key in PKCS#8, then the chain.
	keystore := filepath.Join(b.dir, "broker-keystore.pem")
	if err := writeKeystore(keystore, pki.Path("broker-key.pem"), pki.Path("broker.pem")); err != nil {
		return "", nil, err
	}
	internal := testinfra.FreePort(b.t)
	jaas := func(module, users string) string {
		return fmt.Sprintf("org.apache.kafka.common.security.%s required%s;", module, users)
	}
	props := fmt.Sprintf(`listeners=SECURE://127.0.0.1:%[1]d,INTERNAL://127.0.0.1:%[2]d,CONTROLLER://127.0.0.1:%[3]d
advertised.listeners=SECURE://127.0.0.1:%[1]d,INTERNAL://127.0.0.1:%[2]d,CONTROLLER://127.0.0.1:%[3]d
inter.broker.listener.name=INTERNAL
listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SECURE:SASL_SSL
listener.name.secure.sasl.enabled.mechanisms=%[4]s
listener.name.secure.plain.sasl.jaas.config=%[5]s
listener.name.secure.scram-sha-256.sasl.jaas.config=%[6]s
listener.name.secure.scram-sha-512.sasl.jaas.config=%[6]s
listener.name.secure.ssl.keystore.type=PEM
listener.name.secure.ssl.keystore.location=%[7]s
`, b.Port, internal, b.ctrlPort, strings.Join(Mechanisms, ","),
		jaas("plain.PlainLoginModule", fmt.Sprintf(` user_%s="%s"`, Username, Password)),
		jaas("scram.ScramLoginModule", ""), keystore)
	var format []string
	for _, m := range Mechanisms[1:] {
		format = append(format, "--add-scram", fmt.Sprintf("%s=[name=%s,password=%s]", m, Username, Password))
	}
	return props, format, nil
}

// writeKeystore writes the PEM key store of Kafka: the SEC 1 key of keyFile as PKCS#8, then the
// certificates of certFile.
func writeKeystore(path, keyFile, certFile string) error {
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return errors.New("key store: no PEM key in " + keyFile)
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("key store: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("key store: %w", err)
	}
	chain, err := os.ReadFile(certFile)
	if err != nil {
		return err
	}
	out := append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), chain...)
	return os.WriteFile(path, out, 0o600)
}
