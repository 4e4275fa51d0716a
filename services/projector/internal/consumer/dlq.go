package consumer

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gocql/gocql"
	"github.com/segmentio/kafka-go"

	"github.com/ordersys/ordersys/pkg/cql"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
)

// Kafka header names (shared API.md) read and written by the projector.
const (
	headerEventType     = "event_type"
	headerAggregateID   = "aggregate_id"
	headerSequence      = "sequence"
	headerCorrelationID = "correlation_id"
	headerEventID       = "event_id"
	headerTraceParent   = "traceparent"
	headerTraceState    = "tracestate"

	// HeaderDLQReason holds the poison reason (one of app's Reason constants) on a dead letter.
	HeaderDLQReason = "dlq_reason"
	// HeaderDLQError holds the error text on a dead letter.
	HeaderDLQError = "dlq_error"
	// HeaderDLQProjection names the projection that could not apply the message.
	HeaderDLQProjection = "dlq_projection"
	// HeaderDLQSource holds "<topic>/<partition>/<offset>" of the original message.
	HeaderDLQSource = "dlq_source"
)

// tooLarge reports whether a write failed because the message is too large for the writer's
// batch or for the broker, which no retry changes.
func tooLarge(err error) bool {
	var per kafka.WriteErrors // one error per message written (one here); it has no Unwrap
	if errors.As(err, &per) {
		for _, e := range per {
			if tooLarge(e) {
				return true
			}
		}
	}
	return errors.As(err, new(kafka.MessageTooLargeError)) || errors.Is(err, kafka.MessageSizeTooLarge)
}

// DLQSuffix is appended to a topic's name to get the projector's dead-letter topic.
const DLQSuffix = okafka.ProjectorDLQSuffix

// DLQTopic returns the projector's dead-letter topic of a topic.
func DLQTopic(topic string) string { return topic + DLQSuffix }

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// DeadLetters sends poison messages to <topic>.projector.dlq (same key, value and headers, plus
// the dlq_* headers) and records them in the dead_letters table for inspection and re-drive.
type DeadLetters struct {
	w     *kafka.Writer
	tr    *kafka.Transport
	table *cql.DeadLetters // nil: not recorded
}

// NewDeadLetters returns a DLQ publisher on the cluster kc; s, when not nil, also records each
// dead letter in the dead_letters table.
func NewDeadLetters(kc okafka.Cluster, s *gocql.Session) *DeadLetters {
	tr := kc.Transport()
	var table *cql.DeadLetters
	if s != nil {
		table = cql.NewDeadLetters(s)
	}
	return &DeadLetters{
		tr: tr,
		w: &kafka.Writer{
			Addr:                   kafka.TCP(kc.Brokers...),
			Transport:              tr,
			Balancer:               &kafka.Hash{},
			RequiredAcks:           kafka.RequireAll,
			AllowAutoTopicCreation: true,
			BatchTimeout:           5 * time.Millisecond,
			WriteTimeout:           10 * time.Second,
		},
		table: table,
	}
}

// Close flushes and closes the publisher.
func (d *DeadLetters) Close() error {
	err := d.w.Close()
	d.tr.CloseIdleConnections()
	return err
}

// Publish sends m to its dead-letter topic. An error is transient: the caller retries and must
// not commit m before Publish and then Record succeed.
func (d *DeadLetters) Publish(ctx context.Context, projection string, m kafka.Message, reason string, cause error) error {
	topic := DLQTopic(m.Topic)
	headers := append([]kafka.Header(nil), m.Headers...)
	headers = append(headers,
		kafka.Header{Key: HeaderDLQReason, Value: []byte(reason)},
		kafka.Header{Key: HeaderDLQError, Value: []byte(truncate(cause.Error(), 2000))},
		kafka.Header{Key: HeaderDLQProjection, Value: []byte(projection)},
		kafka.Header{Key: HeaderDLQSource, Value: []byte(fmt.Sprintf("%s/%d/%d", m.Topic, m.Partition, m.Offset))},
	)
	err := d.w.WriteMessages(ctx, kafka.Message{Topic: topic, Key: m.Key, Value: m.Value, Headers: headers})
	if tooLarge(err) {
		// The dlq_* headers can push a message that fitted its topic past the writer's batch
		// limit (1 MiB) or the broker's message.max.bytes: that never changes on a retry. Send
		// it without its value; the dead_letters row (Record) keeps the whole envelope.
		headers = append(headers, kafka.Header{Key: okafka.HeaderDLQValueOmitted, Value: []byte(strconv.Itoa(len(m.Value)))})
		err = d.w.WriteMessages(ctx, kafka.Message{Topic: topic, Key: m.Key, Headers: headers})
	}
	if err != nil {
		return fmt.Errorf("publish dead letter to %s: %w", topic, err)
	}
	return nil
}

// Record writes the dead letter of m in the dead_letters table, where ordersysctl lists and
// re-drives it (nothing when the publisher has no session). An error is transient: the caller
// retries Record alone (the message is published already) and must not commit m before it
// succeeds, so a dead letter that stops half-way is published again and recorded by whoever
// handles m next. Every record of m by projection writes the same row (DeadLetterID): a retry
// after a write whose answer was lost, or the next owner's record, replaces it instead of adding
// a second row for one dead letter.
func (d *DeadLetters) Record(ctx context.Context, projection string, m kafka.Message, reason string, cause error) error {
	if d.table == nil {
		return nil
	}
	seq, _ := strconv.ParseInt(header(m, headerSequence), 10, 64)
	aggID := header(m, headerAggregateID)
	if _, err := gocql.ParseUUID(aggID); err != nil {
		aggID = string(m.Key)
	}
	return d.table.Put(ctx, &cql.DeadLetter{Topic: DLQTopic(m.Topic), ID: DeadLetterID(projection, m),
		AggregateID: aggID, Sequence: seq,
		EventID: header(m, headerEventID), EventType: header(m, headerEventType),
		Reason: projection + ": " + reason + ": " + truncate(cause.Error(), 2000), Envelope: m.Value})
}

// DeadLetterID returns the dead_letters id of m dead-lettered by projection: a version 1 (time)
// UUID with m's timestamp, so the table lists dead letters in the order their messages were
// written, and with clock sequence and node taken from a hash of projection and m's topic,
// partition, offset, key and value, so the same message always gets the same id.
func DeadLetterID(projection string, m kafka.Message) gocql.UUID {
	at := m.Time
	if at.IsZero() { // a message from the broker always has one
		at = time.Unix(0, 0)
	}
	id := gocql.UUIDFromTime(at) // time and version; the rest is random and replaced below
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d\x00%q\x00", projection, m.Topic, m.Partition, m.Offset, m.Key)
	h.Write(m.Value)
	copy(id[8:], h.Sum(nil)[:8])
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	return id
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
