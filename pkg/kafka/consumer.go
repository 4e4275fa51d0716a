package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// ReaderConfig configures a consumer-group reader.
type ReaderConfig struct {
	// Cluster is the cluster read from.
	Cluster Cluster
	// GroupID names the consumer group.
	GroupID string
	// Topics are the topics the group reads.
	Topics []string
	// MaxWait bounds how long a fetch waits for new records (default 100ms: low latency).
	MaxWait time.Duration
	// StartFromLatest makes a group without committed offsets start at the end of each partition
	// instead of the beginning.
	StartFromLatest bool
}

// NewReader returns a consumer-group reader tuned for low latency. Offsets are committed only
// by CommitMessages (explicit, synchronous), so a record counts as consumed once its effect is
// durable; delivery is at least once.
func NewReader(cfg ReaderConfig) *kafkago.Reader {
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 100 * time.Millisecond
	}
	start := kafkago.FirstOffset
	if cfg.StartFromLatest {
		start = kafkago.LastOffset
	}
	return kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:               cfg.Cluster.Brokers,
		Dialer:                cfg.Cluster.Dialer(10 * time.Second),
		GroupID:               cfg.GroupID,
		GroupTopics:           cfg.Topics,
		MinBytes:              1,
		MaxBytes:              10 << 20,
		MaxWait:               cfg.MaxWait,
		ReadBatchTimeout:      cfg.MaxWait + time.Second,
		CommitInterval:        0,
		StartOffset:           start,
		HeartbeatInterval:     time.Second,
		SessionTimeout:        10 * time.Second,
		RebalanceTimeout:      10 * time.Second,
		JoinGroupBackoff:      500 * time.Millisecond,
		WatchPartitionChanges: true,
		ReadBackoffMin:        50 * time.Millisecond,
		ReadBackoffMax:        time.Second,
	})
}

// PartitionCount returns the number of partitions of a topic.
func PartitionCount(ctx context.Context, c Cluster, topic string) (int, error) {
	client, done := c.Client(10 * time.Second)
	defer done()
	md, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("metadata of %s: %w", topic, c.Explain(err))
	}
	for _, t := range md.Topics {
		if t.Name == topic {
			if t.Error != nil {
				return 0, fmt.Errorf("metadata of %s: %w", topic, t.Error)
			}
			return len(t.Partitions), nil
		}
	}
	return 0, fmt.Errorf("metadata of %s: %w", topic, kafkago.UnknownTopicOrPartition)
}

// ReadTopic reads every record of every partition of topic from the beginning up to the
// partitions' high watermarks as they are when called, without a consumer group, and returns
// them partition by partition in offset order. It is meant for tools and tests.
func ReadTopic(ctx context.Context, c Cluster, topic string) ([]kafkago.Message, error) {
	n, err := PartitionCount(ctx, c, topic)
	if err != nil {
		return nil, err
	}
	var out []kafkago.Message
	for p := 0; p < n; p++ {
		msgs, err := readPartition(ctx, c, topic, p)
		if err != nil {
			return nil, err
		}
		out = append(out, msgs...)
	}
	return out, nil
}

func readPartition(ctx context.Context, c Cluster, topic string, partition int) ([]kafkago.Message, error) {
	dialer := c.Dialer(10 * time.Second)
	conn, err := dialer.DialLeader(ctx, "tcp", c.Brokers[0], topic, partition)
	if err != nil {
		return nil, fmt.Errorf("dial leader of %s/%d: %w", topic, partition, c.Explain(err))
	}
	first, last, err := conn.ReadOffsets()
	_ = conn.Close()
	if err != nil {
		return nil, fmt.Errorf("offsets of %s/%d: %w", topic, partition, err)
	}
	if last <= first {
		return nil, nil
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: c.Brokers, Dialer: dialer, Topic: topic, Partition: partition, MinBytes: 1, MaxBytes: 10 << 20,
		MaxWait: 100 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return nil, err
	}
	var out []kafkago.Message
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return out, fmt.Errorf("read %s/%d up to offset %d: %w", topic, partition, last, err)
			}
			return out, fmt.Errorf("read %s/%d: %w", topic, partition, err)
		}
		out = append(out, m)
		if m.Offset >= last-1 {
			return out, nil
		}
	}
}
