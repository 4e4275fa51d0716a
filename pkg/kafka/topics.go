package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// TopicSpec describes a topic to create.
type TopicSpec struct {
	// Name is the topic's name.
	Name string
	// Partitions is the number of partitions (default 1).
	Partitions int
	// ReplicationFactor is the number of replicas of each partition (default 1).
	ReplicationFactor int
	// Configs are topic-level settings such as "min.insync.replicas".
	Configs map[string]string
}

// ConfigRetentionMs is the topic-level setting that bounds how long records are kept.
const ConfigRetentionMs = "retention.ms"

// RetentionForever is the retention.ms that keeps every record until the topic is deleted.
const RetentionForever int64 = -1

// EventTopic is the spec of an event topic (order-events, customer-events): its partitions,
// replication factor and retention.ms (RetentionForever: a projector rebuild replays the topic
// from its first offset, so every event stays; the event store remains the source of truth).
func EventTopic(name string, partitions, replicationFactor int, retentionMs int64) TopicSpec {
	return TopicSpec{Name: name, Partitions: partitions, ReplicationFactor: replicationFactor,
		Configs: map[string]string{ConfigRetentionMs: strconv.FormatInt(retentionMs, 10)}}
}

// TopicConfigs returns the named topic-level settings of topic as the broker reports them
// (DescribeConfigs), explicit or default; a name the broker does not know is absent.
func TopicConfigs(ctx context.Context, c Cluster, topic string, names ...string) (map[string]string, error) {
	client, done := c.Client(10 * time.Second)
	defer done()
	resp, err := client.DescribeConfigs(ctx, &kafkago.DescribeConfigsRequest{Resources: []kafkago.DescribeConfigRequestResource{
		{ResourceType: kafkago.ResourceTypeTopic, ResourceName: topic, ConfigNames: names}}})
	if err != nil {
		return nil, fmt.Errorf("describe configs of topic %s: %w", topic, c.Explain(err))
	}
	out := map[string]string{}
	for _, r := range resp.Resources {
		if r.Error != nil {
			return nil, fmt.Errorf("describe configs of topic %s: %w", topic, r.Error)
		}
		for _, e := range r.ConfigEntries {
			out[e.ConfigName] = e.ConfigValue
		}
	}
	return out, nil
}

// EnsureTopics creates the topics that do not exist yet, with their Configs, and waits, until
// ctx ends, for every partition of every topic to have a leader. An existing topic is left as it
// is (neither its partition count nor its settings are changed; compare them with TopicConfigs).
// It is safe to call from several processes at once.
func EnsureTopics(ctx context.Context, c Cluster, specs ...TopicSpec) error {
	if len(specs) == 0 {
		return nil
	}
	// A transport of its own: pooled connections of a shared one may be stale after a broker
	// restart.
	client, done := c.Client(30 * time.Second)
	defer done()
	req := &kafkago.CreateTopicsRequest{}
	names := make([]string, 0, len(specs))
	for _, s := range specs {
		tc := kafkago.TopicConfig{Topic: s.Name, NumPartitions: max(s.Partitions, 1), ReplicationFactor: max(s.ReplicationFactor, 1)}
		for k, v := range s.Configs {
			tc.ConfigEntries = append(tc.ConfigEntries, kafkago.ConfigEntry{ConfigName: k, ConfigValue: v})
		}
		req.Topics = append(req.Topics, tc)
		names = append(names, s.Name)
	}
	// A refused login or an unverifiable certificate surfaces from the admin client only as an
	// unavailable broker: a direct connection first tells it apart, and retrying cannot help.
	if err := Ping(ctx, c); isSecurity(err) {
		return err
	}
	created := false
	for {
		var err error
		if !created {
			err = c.Explain(createTopics(ctx, client, req))
			created = err == nil
		}
		if created {
			if err = c.Explain(topicsReady(ctx, client, names)); err == nil {
				return nil
			}
		}
		var perm *permanentError
		if errors.As(err, &perm) {
			return perm.err
		}
		if isSecurity(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics %v not ready: %w (last: %v)", names, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }

func createTopics(ctx context.Context, client *kafkago.Client, req *kafkago.CreateTopicsRequest) error {
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for name, err := range resp.Errors {
		if err == nil || errors.Is(err, kafkago.TopicAlreadyExists) {
			continue
		}
		if errors.Is(err, kafkago.InvalidTopic) || errors.Is(err, kafkago.InvalidPartitionNumber) ||
			errors.Is(err, kafkago.InvalidReplicationFactor) || errors.Is(err, kafkago.InvalidConfiguration) ||
			errors.Is(err, kafkago.TopicAuthorizationFailed) || errors.Is(err, kafkago.ClusterAuthorizationFailed) {
			return &permanentError{fmt.Errorf("create topic %s: %w", name, err)}
		}
		return fmt.Errorf("create topic %s: %w", name, err)
	}
	return nil
}

func topicsReady(ctx context.Context, client *kafkago.Client, names []string) error {
	md, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: names})
	if err != nil {
		return err
	}
	found := map[string]kafkago.Topic{}
	for _, t := range md.Topics {
		found[t.Name] = t
	}
	offsets := &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{}}
	for _, n := range names {
		t, ok := found[n]
		if !ok {
			return fmt.Errorf("topic %s not in metadata", n)
		}
		if t.Error != nil {
			return fmt.Errorf("topic %s: %w", n, t.Error)
		}
		if len(t.Partitions) == 0 {
			return fmt.Errorf("topic %s has no partitions yet", n)
		}
		for _, p := range t.Partitions {
			if p.Error != nil || p.Leader.Host == "" {
				return fmt.Errorf("topic %s partition %d has no leader yet", n, p.ID)
			}
			offsets.Topics[n] = append(offsets.Topics[n], kafkago.FirstOffsetOf(p.ID))
		}
	}
	// The metadata may name a leader before that broker serves the partition: ask each leader.
	resp, err := client.ListOffsets(ctx, offsets)
	if err != nil {
		return err
	}
	for n, parts := range resp.Topics {
		for _, p := range parts {
			if p.Error != nil {
				return fmt.Errorf("topic %s partition %d: %w", n, p.Partition, p.Error)
			}
		}
	}
	return nil
}

// Ping opens a new connection to the brokers, one after the other, and asks for the cluster's
// brokers; it fails when none answers. (A client's cached metadata would hide an outage.)
func Ping(ctx context.Context, c Cluster) error {
	_, err := Brokers(ctx, c)
	return err
}

// Brokers is Ping returning the number of brokers in the cluster.
func Brokers(ctx context.Context, c Cluster) (int, error) {
	var errs []error
	for _, addr := range c.Brokers {
		n, err := pingOne(ctx, c, addr)
		if err == nil {
			return n, nil
		}
		errs = append(errs, c.Explain(err))
	}
	return 0, fmt.Errorf("kafka at %v does not answer: %w", c.Brokers, errors.Join(errs...))
}

func pingOne(ctx context.Context, c Cluster, addr string) (int, error) {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := c.Dialer(5*time.Second).DialContext(dctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if dl, ok := dctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	bs, err := conn.Brokers()
	if err != nil {
		return 0, err
	}
	if len(bs) == 0 {
		return 0, fmt.Errorf("%s: no brokers in metadata", addr)
	}
	return len(bs), nil
}
