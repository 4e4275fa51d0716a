package app_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/kafka/kafkatest"
	"github.com/ordersys/ordersys/pkg/testinfra"
)

// TestRelayOverSASLSSL runs the relay binary (a child process configured only through its
// ORDERSYS_KAFKA_* variables) against a private broker that speaks only SASL_SSL: it creates the
// topics and publishes every event, in order, over TLS with SCRAM-SHA-512. A second relay with a
// wrong password logs an error that names ORDERSYS_KAFKA_SASL_PASSWORD and never the password,
// while it retries.
func TestRelayOverSASLSSL(t *testing.T) {
	testinfra.RequireCassandra(t)
	broker := kafkatest.StartSecure(t)
	e := newEnv(t, broker.Env(okafka.SASLScramSHA512))
	c := collect(t, e.kafka, e.orderTopic)
	r := e.startChild("secure", nil)
	waitUntil(t, "leadership", 60*time.Second, func() bool { return r.metric("ordersys_relay_leader") == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	want, _, err := e.produce(ctx, 4, 5, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.waitDistinct(t, 4*5, 60*time.Second)
	verify(t, c.records(), want, 3)

	const wrong = "not-the-kafka-password"
	bad := e.startChild("wrong-password", map[string]string{"ORDERSYS_KAFKA_SASL_PASSWORD": wrong})
	waitUntil(t, "the refused login in the log", 60*time.Second, func() bool {
		b, _ := os.ReadFile(bad.logPath)
		return strings.Contains(string(b), "ORDERSYS_KAFKA_SASL_PASSWORD")
	})
	b, _ := os.ReadFile(bad.logPath)
	for _, secret := range []string{wrong, kafkatest.Password} {
		if strings.Contains(string(b), secret) {
			t.Errorf("the relay logged a password (%q)", secret)
		}
	}
}
