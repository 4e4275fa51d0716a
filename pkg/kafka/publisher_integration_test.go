package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/testinfra"
)

// TestPublisherKeysLandWhereJavaWouldPutThem creates a topic with EnsureTopics, publishes keyed
// records with headers, reads them back and checks each record's partition against the Java
// client's default partitioner, the per-key order, and that an oversized record is refused as
// permanent without holding back the others.
func TestPublisherKeysLandWhereJavaWouldPutThem(t *testing.T) {
	testinfra.RequireKafka(t)
	kc := testinfra.KafkaCluster()
	topic := testinfra.TopicName(t, "order-events")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const partitions = 6
	if err := okafka.EnsureTopics(ctx, kc, okafka.TopicSpec{Name: topic, Partitions: partitions}); err != nil {
		t.Fatal(err)
	}
	// Idempotent.
	if err := okafka.EnsureTopics(ctx, kc, okafka.TopicSpec{Name: topic, Partitions: partitions}); err != nil {
		t.Fatalf("second EnsureTopics: %v", err)
	}
	t.Cleanup(func() {
		c := &kafkago.Client{Addr: kafkago.TCP(kc.Brokers...)}
		_, _ = c.DeleteTopics(context.Background(), &kafkago.DeleteTopicsRequest{Topics: []string{topic}})
	})

	p := okafka.NewPublisher(okafka.PublisherConfig{Cluster: kc, MaxMessageBytes: 10_000})
	defer p.Close()
	var msgs []kafkago.Message
	for k := 0; k < 20; k++ {
		for seq := 1; seq <= 3; seq++ {
			msgs = append(msgs, kafkago.Message{
				Topic: topic, Key: []byte(fmt.Sprintf("key-%02d", k)), Value: []byte(fmt.Sprintf("v%d", seq)),
				Headers: []kafkago.Header{{Key: okafka.HeaderSequence, Value: []byte(fmt.Sprint(seq))}},
			})
		}
	}
	big := kafkago.Message{Topic: topic, Key: []byte("big"), Value: []byte(strings.Repeat("x", 20_000))}
	errs := p.Publish(ctx, append(msgs, big))
	for i, err := range errs[:len(msgs)] {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if err := errs[len(msgs)]; !okafka.IsPermanent(err) || !errors.Is(err, okafka.ErrMessageTooLarge) {
		t.Fatalf("oversized record: error %v, want a permanent ErrMessageTooLarge", err)
	}

	got, err := okafka.ReadTopic(ctx, kc, topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(msgs) {
		t.Fatalf("read %d records, want %d", len(got), len(msgs))
	}
	last := map[string]string{}
	for _, m := range got {
		if want := okafka.PartitionForKey(m.Key, partitions); m.Partition != want {
			t.Errorf("key %s on partition %d, Java partitioner says %d", m.Key, m.Partition, want)
		}
		seq, _ := okafka.Header(m.Headers, okafka.HeaderSequence)
		if seq <= last[string(m.Key)] {
			t.Errorf("key %s: sequence %s after %s", m.Key, seq, last[string(m.Key)])
		}
		last[string(m.Key)] = seq
	}
}

// TestPublisherUnreachableBrokerIsTransient checks that a broker that does not answer gives
// errors that are not permanent (a broker outage must never dead-letter anything).
func TestPublisherUnreachableBrokerIsTransient(t *testing.T) {
	p := okafka.NewPublisher(okafka.PublisherConfig{Cluster: okafka.Cluster{Brokers: []string{"127.0.0.1:1"}}, WriteTimeout: time.Second})
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := p.Publish(ctx, []kafkago.Message{{Topic: "t", Key: []byte("k"), Value: []byte("v")}})
	if errs[0] == nil || okafka.IsPermanent(errs[0]) {
		t.Fatalf("publish to a closed port: %v, want a transient error", errs[0])
	}
	if err := p.Ping(ctx); err == nil {
		t.Fatal("Ping of a closed port succeeded")
	}
}

// TestEnsureTopicsSetsRetentionAndLeavesAnExistingTopicAlone creates an event topic with
// retention.ms=-1 (what a projector rebuild replaying from the first offset needs), reads the
// setting back with DescribeConfigs, and checks that a second EnsureTopics with another spec
// changes neither the retention nor the partition count.
func TestEnsureTopicsSetsRetentionAndLeavesAnExistingTopicAlone(t *testing.T) {
	testinfra.RequireKafka(t)
	kc := testinfra.KafkaCluster()
	topic := testinfra.TopicName(t, "order-events")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		c := &kafkago.Client{Addr: kafkago.TCP(kc.Brokers...)}
		_, _ = c.DeleteTopics(context.Background(), &kafkago.DeleteTopicsRequest{Topics: []string{topic}})
	})
	if err := okafka.EnsureTopics(ctx, kc, okafka.EventTopic(topic, 2, 1, okafka.RetentionForever)); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		got, err := okafka.TopicConfigs(ctx, kc, topic, okafka.ConfigRetentionMs)
		if err != nil {
			t.Fatal(err)
		}
		if got[okafka.ConfigRetentionMs] != "-1" {
			t.Fatalf("%s: retention.ms = %q, want -1", when, got[okafka.ConfigRetentionMs])
		}
		if n, err := okafka.PartitionCount(ctx, kc, topic); err != nil || n != 2 {
			t.Fatalf("%s: %d partitions (%v), want 2", when, n, err)
		}
	}
	check("created")
	if err := okafka.EnsureTopics(ctx, kc, okafka.EventTopic(topic, 4, 1, 3_600_000)); err != nil {
		t.Fatalf("EnsureTopics of the existing topic: %v", err)
	}
	check("after EnsureTopics with another spec")
}
