package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// Defaults of PublisherConfig.
const (
	DefaultBatchTimeout    = 2 * time.Millisecond
	DefaultWriteTimeout    = 5 * time.Second
	DefaultMaxMessageBytes = 1_000_000
)

// ErrMessageTooLarge marks a record larger than the publisher's MaxMessageBytes; it is not sent.
var ErrMessageTooLarge = errors.New("message too large")

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// Cluster is the cluster written to.
	Cluster Cluster
	// BatchTimeout is how long a partial batch waits for more records (default 2ms: latency over
	// throughput).
	BatchTimeout time.Duration
	// WriteTimeout bounds one produce request, including the wait for acknowledgements
	// (default 5s).
	WriteTimeout time.Duration
	// MaxMessageBytes is the largest record (key, value and headers) sent; keep it below the
	// broker's max.message.bytes (1048588 by default). Default 1,000,000.
	MaxMessageBytes int
	// Slots is the number of calls that may be in flight at once (default 16); each has a
	// producer of its own (see Publish).
	Slots int
	// Logger receives the client's error log lines (nil: none).
	Logger *slog.Logger
}

// MaxCallRecords is the most records one Publish call may carry.
const MaxCallRecords = 1000

// ErrCallTooLarge is returned for every record of a call over MaxCallRecords records or
// MaxMessageBytes bytes in total.
var ErrCallTooLarge = errors.New("publish call too large")

// Publisher writes keyed records with acknowledgement from all in-sync replicas. Records are
// placed by the murmur2 partitioner of the Java client (PartitionForKey). It makes one attempt
// per call: callers decide about retries (and so keep their ordering guarantees).
//
// Atomicity: each call runs on a kafka-go Writer of its own (a slot), so the records of one call
// that go to one partition form one batch and one produce request — written together or not at
// all, in the order given — as long as the call stays within MaxCallRecords records and
// MaxMessageBytes bytes in total (larger calls are refused). Two calls never share a batch.
type Publisher struct {
	slots    chan *kafkago.Writer
	all      []*kafkago.Writer
	tr       *kafkago.Transport
	cluster  Cluster
	maxBytes int
}

// NewPublisher returns a publisher; it connects lazily.
func NewPublisher(cfg PublisherConfig) *Publisher {
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = DefaultBatchTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.Slots <= 0 {
		cfg.Slots = 16
	}
	tr := cfg.Cluster.Transport()
	tr.MetadataTTL = 10 * time.Second
	p := &Publisher{slots: make(chan *kafkago.Writer, cfg.Slots), tr: tr, cluster: cfg.Cluster, maxBytes: cfg.MaxMessageBytes}
	for i := 0; i < cfg.Slots; i++ {
		w := &kafkago.Writer{
			Addr:         kafkago.TCP(cfg.Cluster.Brokers...),
			Transport:    p.tr,
			Balancer:     NewBalancer(),
			RequiredAcks: kafkago.RequireAll,
			MaxAttempts:  1,
			BatchTimeout: cfg.BatchTimeout,
			BatchSize:    MaxCallRecords,
			BatchBytes:   int64(cfg.MaxMessageBytes),
			WriteTimeout: cfg.WriteTimeout,
			ReadTimeout:  cfg.WriteTimeout,
		}
		if cfg.Logger != nil {
			w.ErrorLogger = kafkago.LoggerFunc(func(msg string, args ...any) {
				cfg.Logger.Debug("kafka writer: " + fmt.Sprintf(msg, args...))
			})
		}
		p.all = append(p.all, w)
		p.slots <- w
	}
	return p
}

// MaxMessageBytes returns the size limit of one record.
func (p *Publisher) MaxMessageBytes() int { return p.maxBytes }

// Cluster returns the cluster written to.
func (p *Publisher) Cluster() Cluster { return p.cluster }

// MessageSize returns an upper bound of the space a record takes in a batch.
func MessageSize(m kafkago.Message) int {
	n := 64 + len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += 10 + len(h.Key) + len(h.Value)
	}
	return n
}

// Publish writes msgs (each names its Topic) in one attempt and returns one error per message:
// nil when all in-sync replicas acknowledged it. A record over MaxMessageBytes is not sent and
// gets ErrMessageTooLarge; a call over the limits of the type's documentation gets
// ErrCallTooLarge for every record.
func (p *Publisher) Publish(ctx context.Context, msgs []kafkago.Message) []error {
	errs := make([]error, len(msgs))
	send := make([]kafkago.Message, 0, len(msgs))
	idx := make([]int, 0, len(msgs))
	total := 0
	for i, m := range msgs {
		n := MessageSize(m)
		if n > p.maxBytes {
			errs[i] = fmt.Errorf("%w: record of about %d bytes exceeds the limit of %d bytes", ErrMessageTooLarge, n, p.maxBytes)
			continue
		}
		total += n
		send = append(send, m)
		idx = append(idx, i)
	}
	if len(send) == 0 {
		return errs
	}
	if len(send) > MaxCallRecords || total > p.maxBytes {
		for _, i := range idx {
			errs[i] = fmt.Errorf("%w: %d records, %d bytes (limits %d, %d)", ErrCallTooLarge, len(send), total, MaxCallRecords, p.maxBytes)
		}
		return errs
	}
	var w *kafkago.Writer
	select {
	case w = <-p.slots:
	case <-ctx.Done():
		for _, i := range idx {
			errs[i] = ctx.Err()
		}
		return errs
	}
	err := p.cluster.Explain(w.WriteMessages(ctx, send...))
	p.slots <- w
	if err == nil {
		return errs
	}
	var werrs kafkago.WriteErrors
	var tooLarge kafkago.MessageTooLargeError
	switch {
	case errors.As(err, &werrs) && len(werrs) == len(send):
		for j, e := range werrs {
			errs[idx[j]] = p.cluster.Explain(e)
		}
	case errors.As(err, &tooLarge):
		// The writer's own size check: not expected given the check above; nothing was sent.
		for _, i := range idx {
			errs[i] = fmt.Errorf("not sent: another record of the call is too large: %w", err)
		}
	default:
		for _, i := range idx {
			errs[i] = err
		}
	}
	return errs
}

// Ping asks the brokers for metadata.
func (p *Publisher) Ping(ctx context.Context) error { return Ping(ctx, p.cluster) }

// Close flushes and closes the writers.
func (p *Publisher) Close() error {
	var errs []error
	for _, w := range p.all {
		errs = append(errs, w.Close())
	}
	p.tr.CloseIdleConnections()
	return errors.Join(errs...)
}

// IsPermanent reports whether a publish error can never go away by retrying the same record:
// the record is too large, or the broker rejects it as invalid. Broker outages, timeouts,
// leader changes and unknown topics are not permanent.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	return errors.Is(err, ErrMessageTooLarge) ||
		errors.Is(err, kafkago.MessageSizeTooLarge) ||
		errors.Is(err, kafkago.RecordListTooLarge) ||
		errors.Is(err, kafkago.InvalidRecord) ||
		errors.Is(err, kafkago.InvalidTopic)
}
