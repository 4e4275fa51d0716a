package testinfra

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	okafka "github.com/ordersys/ordersys/pkg/kafka"
)

// KafkaCluster is the shared plaintext cluster at KafkaBrokers, as pkg/kafka's clients take it.
func KafkaCluster() okafka.Cluster { return okafka.Cluster{Brokers: KafkaBrokers()} }

// topicTimeout bounds creating topics and waiting for their partitions' leaders.
const topicTimeout = 60 * time.Second

// TopicName returns a topic name unique to this call, made of base, t's name and a random
// suffix, with only the characters Kafka accepts (at most 249).
func TopicName(t testing.TB, base string) string {
	name := sanitize(base, '-', 60)
	if name == "" {
		name = "topic"
	}
	return name + "-" + sanitize(t.Name(), '-', 100) + "-" + randomSuffix(4)
}

// CreateTopics requires Kafka (see RequireKafka), creates the named topics on brokers with the
// given number of partitions and replication factor 1, and waits until every partition has a
// leader, so that producing right after it returns succeeds. An existing topic is not an error.
// The topics are deleted when t ends.
func CreateTopics(t testing.TB, brokers []string, partitions int, names ...string) {
	t.Helper()
	RequireKafka(t)
	if len(names) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), topicTimeout)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: topicTimeout}

	req := &kafka.CreateTopicsRequest{}
	for _, n := range names {
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: n, NumPartitions: partitions, ReplicationFactor: 1})
	}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		t.Fatalf("testinfra: create topics %v: %v", names, err)
	}
	for n, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			t.Fatalf("testinfra: create topic %s: %v", n, err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), topicTimeout)
		defer cancel()
		if _, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: names}); err != nil {
			t.Logf("testinfra: delete topics %v: %v", names, err)
		}
	})

	for {
		err := topicsReady(ctx, client, names, partitions)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("testinfra: topics %v not ready after %s: %v", names, topicTimeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// topicsReady says whether every topic has at least partitions partitions, each with a leader.
func topicsReady(ctx context.Context, client *kafka.Client, names []string, partitions int) error {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
	if err != nil {
		return err
	}
	found := make(map[string]kafka.Topic, len(md.Topics))
	for _, tp := range md.Topics {
		found[tp.Name] = tp
	}
	for _, n := range names {
		tp, ok := found[n]
		switch {
		case !ok:
			return fmt.Errorf("topic %s: not in metadata", n)
		case tp.Error != nil:
			return fmt.Errorf("topic %s: %w", n, tp.Error)
		case len(tp.Partitions) < partitions:
			return fmt.Errorf("topic %s: %d of %d partitions", n, len(tp.Partitions), partitions)
		}
		for _, p := range tp.Partitions {
			if p.Error != nil {
				return fmt.Errorf("topic %s partition %d: %w", n, p.ID, p.Error)
			}
			if p.Leader.Host == "" {
				return fmt.Errorf("topic %s partition %d: %w", n, p.ID, errNoLeader)
			}
		}
	}
	return nil
}
