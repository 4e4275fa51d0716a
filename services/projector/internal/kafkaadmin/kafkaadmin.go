// Package kafkaadmin reads and sets the offsets of the projector's consumer groups on the
// brokers (the app.Groups port): their lag per partition, the age of the oldest message not
// processed, and a new group's start at the end of the topics.
package kafkaadmin

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/services/projector/internal/app"
)

// adminTimeout bounds one administrative request to the brokers.
const adminTimeout = 10 * time.Second

// Groups implements app.Groups on a Kafka cluster.
type Groups struct {
	// Cluster is the cluster the groups live on.
	Cluster okafka.Cluster
}

var _ app.Groups = Groups{}

// Lag returns GroupLag on the cluster.
func (g Groups) Lag(ctx context.Context, group string, topics []string) ([]app.PartitionLag, error) {
	return GroupLag(ctx, g.Cluster, group, topics)
}

// OldestUnprocessed returns OldestUnprocessed on the cluster.
func (g Groups) OldestUnprocessed(ctx context.Context, p app.PartitionLag) (time.Time, error) {
	return OldestUnprocessed(ctx, g.Cluster, p)
}

// StartAtEnd returns StartGroupAtEnd on the cluster.
func (g Groups) StartAtEnd(ctx context.Context, group string, topics []string) error {
	return StartGroupAtEnd(ctx, g.Cluster, group, topics)
}

type topicPartition struct {
	topic     string
	partition int
}

// GroupLag returns, for every partition of the topics, how many messages the consumer group has
// not processed yet (committed offsets are written only after the read-model writes).
func GroupLag(ctx context.Context, kc okafka.Cluster, group string, topics []string) ([]app.PartitionLag, error) {
	client, done := kc.Client(adminTimeout)
	defer done()
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("metadata of %v: %w", topics, kc.Explain(err))
	}
	parts := map[string][]int{}
	var out []app.PartitionLag
	for _, t := range md.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("topic %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			first, last, err := partitionOffsets(ctx, kc, net.JoinHostPort(p.Leader.Host, strconv.Itoa(p.Leader.Port)), t.Name, p.ID)
			if err != nil {
				return nil, err
			}
			parts[t.Name] = append(parts[t.Name], p.ID)
			out = append(out, app.PartitionLag{Topic: t.Name, Partition: p.ID, Committed: first, End: last,
				Leader: net.JoinHostPort(p.Leader.Host, strconv.Itoa(p.Leader.Port))})
		}
	}
	resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: parts})
	if err != nil {
		return nil, fmt.Errorf("committed offsets of group %s: %w", group, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("committed offsets of group %s: %w", group, resp.Error)
	}
	committed := map[topicPartition]int64{}
	for topic, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("committed offset of group %s on %s/%d: %w", group, topic, p.Partition, p.Error)
			}
			committed[topicPartition{topic, p.Partition}] = p.CommittedOffset
		}
	}
	for i := range out {
		pl := &out[i]
		first := pl.Committed // the first retained offset, stored there above
		pl.Committed = -1
		pos := first
		if c, ok := committed[topicPartition{pl.Topic, pl.Partition}]; ok && c >= 0 {
			pl.Committed, pos = c, c
		}
		pl.Lag = max(pl.End-pos, 0)
	}
	return out, nil
}

// partitionOffsets returns the first retained offset and the high-water mark of a partition,
// asking its leader.
func partitionOffsets(ctx context.Context, kc okafka.Cluster, leader, topic string, partition int) (int64, int64, error) {
	dctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	conn, err := kc.Dialer(adminTimeout).DialLeader(dctx, "tcp", leader, topic, partition)
	if err != nil {
		return 0, 0, fmt.Errorf("dial leader of %s/%d: %w", topic, partition, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(adminTimeout))
	first, last, err := conn.ReadOffsets()
	if err != nil {
		return 0, 0, fmt.Errorf("offsets of %s/%d: %w", topic, partition, err)
	}
	return first, last, nil
}

// OldestUnprocessed returns the record timestamp of the first message the group has not
// processed on the partition (zero when it has processed every one), read from its leader.
func OldestUnprocessed(ctx context.Context, kc okafka.Cluster, p app.PartitionLag) (time.Time, error) {
	if p.Lag <= 0 {
		return time.Time{}, nil
	}
	dctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	conn, err := kc.Dialer(adminTimeout).DialLeader(dctx, "tcp", p.Leader, p.Topic, p.Partition)
	if err != nil {
		return time.Time{}, fmt.Errorf("dial leader of %s/%d: %w", p.Topic, p.Partition, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(adminTimeout))
	next := p.End - p.Lag // the committed position, or the first retained offset
	if _, err := conn.Seek(next, kafka.SeekAbsolute); err != nil {
		return time.Time{}, fmt.Errorf("seek %s/%d to %d: %w", p.Topic, p.Partition, next, err)
	}
	m, err := conn.ReadMessage(16 << 20)
	if err != nil {
		return time.Time{}, fmt.Errorf("read %s/%d at %d: %w", p.Topic, p.Partition, next, err)
	}
	return m.Time, nil
}

// StartGroupAtEnd commits, for a consumer group that has no member yet, the current end (high-
// water mark) of every partition of the topics: its members will consume only what is published
// from now on (a rebuild from the event store reads the past there).
func StartGroupAtEnd(ctx context.Context, kc okafka.Cluster, group string, topics []string) error {
	parts, err := GroupLag(ctx, kc, group, topics)
	if err != nil {
		return err
	}
	offsets := map[string][]kafka.OffsetCommit{}
	for _, p := range parts {
		offsets[p.Topic] = append(offsets[p.Topic], kafka.OffsetCommit{Partition: p.Partition, Offset: p.End})
	}
	client, done := kc.Client(adminTimeout)
	defer done()
	resp, err := client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1, Topics: offsets})
	if err != nil {
		return fmt.Errorf("commit the end offsets of group %s: %w", group, kc.Explain(err))
	}
	for topic, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return fmt.Errorf("commit the end offset of group %s on %s/%d: %w", group, topic, p.Partition, p.Error)
			}
		}
	}
	return nil
}
