package testinfra_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/segmentio/kafka-go"

	"github.com/ordersys/ordersys/pkg/testinfra"
)

// TestCassandraRoundTripAndConditionalBatch checks what the event store relies on, against the
// real server: plain writes and reads, a conditional batch on one partition (applied, then not
// applied with the current values read by column name) and the server's refusal of a conditional
// batch spanning two partitions.
func TestCassandraRoundTripAndConditionalBatch(t *testing.T) {
	s, ks := testinfra.Keyspace(t)
	if !strings.HasPrefix(ks, "t_") {
		t.Fatalf("keyspace %q: want the t_ prefix", ks)
	}
	mustExec(t, s, `CREATE TABLE events (
		aggregate_id uuid,
		sequence bigint,
		version bigint static,
		payload blob,
		PRIMARY KEY (aggregate_id, sequence))`)

	agg, other := gocql.TimeUUID(), gocql.TimeUUID()

	// Plain write and read.
	mustExec(t, s, `INSERT INTO events (aggregate_id, sequence, payload) VALUES (?, ?, ?)`, other, int64(1), []byte("plain"))
	var payload []byte
	if err := s.Query(`SELECT payload FROM events WHERE aggregate_id = ? AND sequence = ?`, other, int64(1)).Scan(&payload); err != nil {
		t.Fatalf("read plain row: %v", err)
	}
	if string(payload) != "plain" {
		t.Fatalf("payload = %q, want %q", payload, "plain")
	}

	// New aggregate: IF NOT EXISTS on sequence 1, plus sequence 2, in one partition.
	b := s.Batch(gocql.LoggedBatch)
	b.Query(`INSERT INTO events (aggregate_id, sequence, version, payload) VALUES (?, ?, ?, ?) IF NOT EXISTS`, agg, int64(1), int64(2), []byte("e1"))
	b.Query(`INSERT INTO events (aggregate_id, sequence, payload) VALUES (?, ?, ?)`, agg, int64(2), []byte("e2"))
	if applied, prev := execCAS(t, s, b); !applied {
		t.Fatalf("first conditional batch not applied; current values %v", prev)
	}

	// Append at the right expected version: applied.
	b = s.Batch(gocql.LoggedBatch)
	b.Query(`UPDATE events SET version = ? WHERE aggregate_id = ? IF version = ?`, int64(3), agg, int64(2))
	b.Query(`INSERT INTO events (aggregate_id, sequence, payload) VALUES (?, ?, ?)`, agg, int64(3), []byte("e3"))
	if applied, prev := execCAS(t, s, b); !applied {
		t.Fatalf("batch at version 2 not applied; current values %v", prev)
	}

	// Append again at the now stale expected version: not applied, current version returned.
	b = s.Batch(gocql.LoggedBatch)
	b.Query(`UPDATE events SET version = ? WHERE aggregate_id = ? IF version = ?`, int64(3), agg, int64(2))
	b.Query(`INSERT INTO events (aggregate_id, sequence, payload) VALUES (?, ?, ?)`, agg, int64(3), []byte("lost"))
	applied, prev := execCAS(t, s, b)
	if applied {
		t.Fatal("batch at stale version 2 applied")
	}
	if v, ok := prev["version"].(int64); !ok || v != 3 {
		t.Fatalf("not-applied batch returned version %#v (all: %v), want int64(3)", prev["version"], prev)
	}

	// The partition holds exactly the committed events, read linearizably.
	iter := s.Query(`SELECT sequence, version, payload FROM events WHERE aggregate_id = ?`, agg).
		Consistency(gocql.Serial).Iter()
	var (
		seq, version int64
		got          []string
	)
	for iter.Scan(&seq, &version, &payload) {
		if version != 3 {
			t.Errorf("sequence %d: static version %d, want 3", seq, version)
		}
		got = append(got, string(payload))
	}
	if err := iter.Close(); err != nil {
		t.Fatalf("serial read: %v", err)
	}
	if strings.Join(got, ",") != "e1,e2,e3" {
		t.Fatalf("events = %v, want [e1 e2 e3]", got)
	}

	// A conditional batch over two partitions is refused by the server itself.
	b = s.Batch(gocql.LoggedBatch)
	b.Query(`UPDATE events SET version = ? WHERE aggregate_id = ? IF version = ?`, int64(4), agg, int64(3))
	b.Query(`INSERT INTO events (aggregate_id, sequence, payload) VALUES (?, ?, ?)`, other, int64(2), []byte("x"))
	_, _, err := s.MapExecuteBatchCAS(b, map[string]any{})
	if err == nil {
		t.Fatal("conditional batch over two partitions was accepted")
	}
	t.Logf("two-partition conditional batch refused as expected: %v", err)
	var reqErr gocql.RequestError
	if !errors.As(err, &reqErr) || reqErr.Code() != gocql.ErrCodeInvalid {
		t.Errorf("two-partition conditional batch: error %T %v, want an Invalid request error", err, err)
	}
	if !strings.Contains(err.Error(), "partition") {
		t.Errorf("two-partition conditional batch: error %q does not mention partitions", err)
	}
}

// TestKafkaKeyedMessageWithHeaders produces a keyed message with headers to a fresh topic and
// consumes it in a consumer group.
func TestKafkaKeyedMessageWithHeaders(t *testing.T) {
	testinfra.RequireKafka(t)
	brokers := testinfra.KafkaBrokers()
	topic := testinfra.TopicName(t, "order-events")
	testinfra.CreateTopics(t, brokers, 3, topic)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 10 * time.Millisecond,
	}
	defer w.Close()
	want := kafka.Message{
		Key:   []byte("0b9a4f1e-6a55-4c3e-9d0e-3a0b2c1d4e5f"),
		Value: []byte("envelope bytes"),
		Headers: []kafka.Header{
			{Key: "event_type", Value: []byte("OrderCreated")},
			{Key: "sequence", Value: []byte("1")},
		},
	}
	if err := w.WriteMessages(ctx, want); err != nil {
		t.Fatalf("produce: %v", err)
	}

	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     brokers,
		GroupID:     testinfra.TopicName(t, "group"),
		Topic:       topic,
		StartOffset: kafka.FirstOffset,
		MaxWait:     200 * time.Millisecond,
	})
	defer r.Close()
	got, err := r.FetchMessage(ctx)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	if string(got.Key) != string(want.Key) || string(got.Value) != string(want.Value) {
		t.Fatalf("got key %q value %q, want key %q value %q", got.Key, got.Value, want.Key, want.Value)
	}
	headers := map[string]string{}
	for _, h := range got.Headers {
		headers[h.Key] = string(h.Value)
	}
	if headers["event_type"] != "OrderCreated" || headers["sequence"] != "1" || len(headers) != 2 {
		t.Fatalf("headers = %v, want event_type=OrderCreated sequence=1", headers)
	}
	if err := r.CommitMessages(ctx, got); err != nil {
		t.Fatalf("commit offset: %v", err)
	}
}

func mustExec(t *testing.T, s *gocql.Session, stmt string, args ...any) {
	t.Helper()
	if err := s.Query(stmt, args...).Exec(); err != nil {
		t.Fatalf("%s: %v", strings.Join(strings.Fields(stmt), " "), err)
	}
}

// execCAS runs a conditional batch and returns whether it applied and, when it did not, the
// current values by column name.
func execCAS(t *testing.T, s *gocql.Session, b *gocql.Batch) (bool, map[string]any) {
	t.Helper()
	prev := map[string]any{}
	applied, iter, err := s.MapExecuteBatchCAS(b, prev)
	if err != nil {
		t.Fatalf("conditional batch: %v", err)
	}
	if err := iter.Close(); err != nil {
		t.Fatalf("conditional batch: close: %v", err)
	}
	return applied, prev
}
