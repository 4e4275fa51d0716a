package kafka_test

import (
	"context"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/ordersys/ordersys/pkg/devpki"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/kafka/kafkatest"
)

// TestSASLSSL runs against a private broker whose only client listener is SASL_SSL: for each of
// PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, topics are created (EnsureTopics, TopicConfigs), the
// publisher writes keyed records, a consumer group and ReadTopic read them back, and Ping
// answers. A wrong password, a plaintext client, a CA that did not sign the broker and a
// mechanism the broker does not know each fail with an error that names the setting to fix.
func TestSASLSSL(t *testing.T) {
	b := kafkatest.StartSecure(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	for _, mech := range kafkatest.Mechanisms {
		t.Run(mech, func(t *testing.T) {
			kc := b.Cluster(mech)
			topic := "secure-" + strings.ToLower(mech)
			if err := okafka.EnsureTopics(ctx, kc, okafka.EventTopic(topic, 3, 1, okafka.RetentionForever)); err != nil {
				t.Fatalf("EnsureTopics: %v", err)
			}
			if got, err := okafka.TopicConfigs(ctx, kc, topic, okafka.ConfigRetentionMs); err != nil || got[okafka.ConfigRetentionMs] != "-1" {
				t.Fatalf("TopicConfigs = %v, %v", got, err)
			}
			if err := okafka.Ping(ctx, kc); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			p := okafka.NewPublisher(okafka.PublisherConfig{Cluster: kc})
			defer p.Close()
			var msgs []kafkago.Message
			for _, k := range []string{"a", "b", "c", "d"} {
				msgs = append(msgs, kafkago.Message{Topic: topic, Key: []byte(k), Value: []byte("v-" + k)})
			}
			for i, err := range p.Publish(ctx, msgs) {
				if err != nil {
					t.Fatalf("publish %d: %v", i, err)
				}
			}
			got, err := okafka.ReadTopic(ctx, kc, topic)
			if err != nil || len(got) != len(msgs) {
				t.Fatalf("ReadTopic: %d records, %v; want %d", len(got), err, len(msgs))
			}
			r := okafka.NewReader(okafka.ReaderConfig{Cluster: kc, GroupID: "g-" + topic, Topics: []string{topic}})
			defer r.Close()
			seen := map[string]bool{}
			for len(seen) < len(msgs) {
				m, err := r.FetchMessage(ctx)
				if err != nil {
					t.Fatalf("consumer group: %v (read %d)", err, len(seen))
				}
				seen[string(m.Key)] = true
				if err := r.CommitMessages(ctx, m); err != nil {
					t.Fatalf("commit: %v", err)
				}
			}
		})
	}

	good := b.Env(okafka.SASLScramSHA256)
	refused := func(name string, change map[string]string, want ...string) {
		t.Helper()
		env := map[string]string{}
		for k, v := range good {
			env[k] = v
		}
		for k, v := range change {
			if v == "" {
				delete(env, k)
			} else {
				env[k] = v
			}
		}
		kc, err := kafkatest.ClusterOf(env)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		for what, err := range map[string]error{
			"Ping":         okafka.Ping(ctx, kc),
			"EnsureTopics": okafka.EnsureTopics(ctx, kc, okafka.TopicSpec{Name: "refused"}),
		} {
			if err == nil {
				t.Errorf("%s: %s worked", name, what)
				continue
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: %s: %v\nwant it to mention %q", name, what, err, w)
				}
			}
			if strings.Contains(err.Error(), kafkatest.Password) {
				t.Errorf("%s: %s: the error shows the password: %v", name, what, err)
			}
		}
		p := okafka.NewPublisher(okafka.PublisherConfig{Cluster: kc})
		defer p.Close()
		if errs := p.Publish(ctx, []kafkago.Message{{Topic: "secure-plain", Value: []byte("x")}}); errs[0] == nil {
			t.Errorf("%s: Publish worked", name)
		}
	}
	for _, mech := range kafkatest.Mechanisms {
		refused("wrong password "+mech, map[string]string{"ORDERSYS_KAFKA_SASL_MECHANISM": mech, "ORDERSYS_KAFKA_SASL_PASSWORD": "not-the-password"},
			"ORDERSYS_KAFKA_SASL_USERNAME", "ORDERSYS_KAFKA_SASL_PASSWORD")
	}
	refused("unknown user", map[string]string{"ORDERSYS_KAFKA_SASL_USERNAME": "nobody"}, "ORDERSYS_KAFKA_SASL_USERNAME")
	other, err := devpki.NewPKI(t.TempDir(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	refused("foreign CA", map[string]string{"ORDERSYS_KAFKA_TLS_CA_FILE": other.Path("ca.pem")}, "ORDERSYS_KAFKA_TLS_CA_FILE")
	refused("plaintext", map[string]string{"ORDERSYS_KAFKA_TLS_CA_FILE": ""})
	refused("no SASL", map[string]string{"ORDERSYS_KAFKA_SASL_MECHANISM": "", "ORDERSYS_KAFKA_SASL_USERNAME": "", "ORDERSYS_KAFKA_SASL_PASSWORD": ""})
	refused("system roots", map[string]string{"ORDERSYS_KAFKA_TLS_CA_FILE": "", "ORDERSYS_KAFKA_TLS_ENABLED": "true"}, "ORDERSYS_KAFKA_TLS_CA_FILE")
}
