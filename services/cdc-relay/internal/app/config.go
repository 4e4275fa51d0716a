// Package app is the cdc-relay's use-case layer: its configuration, the relay instance (the
// leadership lease under which one instance publishes, the source chosen by configuration, the
// recovery sweeper), the dead-letter administration and the admin service. internal/server
// wires it to the CQL session, the Kafka publisher, metrics and health.
package app

import (
	"errors"
	"fmt"
	"time"

	"github.com/ordersys/ordersys/pkg/config"
)

// Sources the relay can read from (ORDERSYS_RELAY_SOURCE).
const (
	SourceOutboxPoll = "outbox-poll"
	SourceScyllaCDC  = "scylla-cdc"
)

// Config is the relay's configuration (docs/DESIGN.md and docs/relay.md list every variable).
type Config struct {
	config.Common
	// GRPC is the gRPC server's TLS, tokens and request bounds.
	GRPC config.GRPCServer
	// Kafka holds the brokers.
	Kafka config.Kafka

	// Source is outbox-poll (any CQL store) or scylla-cdc (ScyllaDB with CDC on the outbox).
	Source string `env:"ORDERSYS_RELAY_SOURCE" default:"outbox-poll"`
	// PollInterval is the pause after a read that found nothing new.
	PollInterval time.Duration `env:"ORDERSYS_RELAY_POLL_INTERVAL" default:"50ms"`
	// SafetyWindow: rows younger than this are not read yet (writes that commit late);
	// outbox-poll only (scylla-cdc keeps the library's 30 s confidence window).
	SafetyWindow time.Duration `env:"ORDERSYS_RELAY_SAFETY_WINDOW" default:"250ms"`
	// RescanWindow is how far behind the second, slower cursor re-reads the outbox
	// (outbox-poll), or the backstop reader trails the main one (scylla-cdc); RescanInterval
	// its pause when idle.
	RescanWindow   time.Duration `env:"ORDERSYS_RELAY_RESCAN_WINDOW" default:"30s"`
	RescanInterval time.Duration `env:"ORDERSYS_RELAY_RESCAN_INTERVAL" default:"1s"`
	// BucketSkew is how long past a minute's end its outbox bucket is still read (clock skew
	// between writers and coordinators).
	BucketSkew time.Duration `env:"ORDERSYS_RELAY_BUCKET_SKEW" default:"2s"`
	// StartLookback is where a reader without checkpoint starts: now − StartLookback.
	StartLookback time.Duration `env:"ORDERSYS_RELAY_START_LOOKBACK" default:"24h"`
	// BatchSize is the most outbox rows read per query.
	BatchSize int `env:"ORDERSYS_RELAY_BATCH_SIZE" default:"500"`
	// Lanes is the number of publishing goroutines (aggregates are hashed onto them).
	Lanes int `env:"ORDERSYS_RELAY_LANES" default:"8"`
	// MaxInFlight bounds the outbox rows read and not yet settled.
	MaxInFlight int `env:"ORDERSYS_RELAY_MAX_IN_FLIGHT" default:"10000"`
	// RetryInitial and RetryMax bound the exponential backoff (with jitter) of publish retries.
	RetryInitial time.Duration `env:"ORDERSYS_RELAY_RETRY_INITIAL" default:"100ms"`
	RetryMax     time.Duration `env:"ORDERSYS_RELAY_RETRY_MAX" default:"5s"`
	// BreakerFailures consecutive failed publish calls open the circuit breaker for
	// BreakerOpenTimeout, after which one probe call is let through.
	BreakerFailures    int           `env:"ORDERSYS_RELAY_BREAKER_FAILURES" default:"3"`
	BreakerOpenTimeout time.Duration `env:"ORDERSYS_RELAY_BREAKER_TIMEOUT" default:"2s"`
	// LeaseTTL is the lifetime of the leadership lease: a dead leader is replaced within about
	// LeaseTTL plus a quarter of it.
	LeaseTTL time.Duration `env:"ORDERSYS_RELAY_LEASE_TTL" default:"10s"`
	// RecoveryInterval is how often the leader settles abandoned append intents older than
	// RecoveryGrace (docs/outbox-protocol.md).
	RecoveryInterval time.Duration `env:"ORDERSYS_RELAY_RECOVERY_INTERVAL" default:"3s"`
	RecoveryGrace    time.Duration `env:"ORDERSYS_RELAY_RECOVERY_GRACE" default:"5s"`
	// Topics are the topics created at start (with their .dlq) and used for rows that name no
	// topic. The command service (which writes the topic into each outbox row) and the projector
	// read the same two variables.
	config.Topics
	// Partitions and ReplicationFactor of the topics the relay creates.
	Partitions        int `env:"ORDERSYS_KAFKA_PARTITIONS" default:"6"`
	ReplicationFactor int `env:"ORDERSYS_KAFKA_REPLICATION_FACTOR" default:"1"`
	// RetentionMs is the retention.ms of the event topics the relay creates (not of their
	// .dlq): 7 days by default; -1 keeps every event. The event store is the source of truth:
	// rebuilds read it (projector rebuild -source store) and RepublishEvents refills a topic
	// from it, so the topics need not keep history. An existing topic is left as it is; a
	// different retention is logged.
	RetentionMs int64 `env:"ORDERSYS_KAFKA_RETENTION_MS" default:"604800000"`
	// BatchTimeout, WriteTimeout and MaxMessageBytes tune the producer.
	BatchTimeout    time.Duration `env:"ORDERSYS_KAFKA_BATCH_TIMEOUT" default:"2ms"`
	WriteTimeout    time.Duration `env:"ORDERSYS_KAFKA_WRITE_TIMEOUT" default:"5s"`
	MaxMessageBytes int           `env:"ORDERSYS_KAFKA_MAX_MESSAGE_BYTES" default:"1000000"`
	// CDCProgressTable keeps the scylla-cdc source's per-stream positions.
	CDCProgressTable string `env:"ORDERSYS_RELAY_CDC_PROGRESS_TABLE" default:"cdc_relay_progress"`
	// HealthInterval is how often the store and the broker are probed.
	HealthInterval time.Duration `env:"ORDERSYS_RELAY_HEALTH_INTERVAL" default:"2s"`
}

// Defaults returns the configuration before the environment is read.
func Defaults() Config {
	return Config{Common: config.Defaults(config.RelayGRPCAddr, config.RelayMetricsAddr)}
}

// LoadConfigFrom reads the configuration over the defaults from lookup instead of the
// environment (bootstrap.LoadConfig reads the environment) and validates it.
func LoadConfigFrom(lookup func(string) (string, bool)) (Config, error) {
	cfg := Defaults()
	if err := config.LoadFrom(&cfg, lookup); err != nil {
		return cfg, fmt.Errorf("configuration: %w", err)
	}
	return cfg, cfg.Validate()
}

// Validate checks the values that have no sensible meaning when out of range.
func (c Config) Validate() error {
	var errs []error
	if c.Source != SourceOutboxPoll && c.Source != SourceScyllaCDC {
		errs = append(errs, fmt.Errorf("ORDERSYS_RELAY_SOURCE %q: want %s or %s", c.Source, SourceOutboxPoll, SourceScyllaCDC))
	}
	for name, d := range map[string]time.Duration{
		"ORDERSYS_RELAY_POLL_INTERVAL": c.PollInterval, "ORDERSYS_RELAY_SAFETY_WINDOW": c.SafetyWindow,
		"ORDERSYS_RELAY_RESCAN_INTERVAL": c.RescanInterval, "ORDERSYS_RELAY_START_LOOKBACK": c.StartLookback,
		"ORDERSYS_RELAY_RETRY_INITIAL": c.RetryInitial, "ORDERSYS_RELAY_RETRY_MAX": c.RetryMax,
		"ORDERSYS_RELAY_BREAKER_TIMEOUT": c.BreakerOpenTimeout, "ORDERSYS_RELAY_RECOVERY_INTERVAL": c.RecoveryInterval,
		"ORDERSYS_KAFKA_WRITE_TIMEOUT": c.WriteTimeout, "ORDERSYS_RELAY_HEALTH_INTERVAL": c.HealthInterval,
		"ORDERSYS_KAFKA_BATCH_TIMEOUT": c.BatchTimeout,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", name))
		}
	}
	if c.RescanWindow <= c.SafetyWindow {
		errs = append(errs, errors.New("ORDERSYS_RELAY_RESCAN_WINDOW must be longer than ORDERSYS_RELAY_SAFETY_WINDOW"))
	}
	if c.LeaseTTL < 2*time.Second {
		errs = append(errs, errors.New("ORDERSYS_RELAY_LEASE_TTL must be at least 2s"))
	}
	if c.BatchSize < 1 || c.Lanes < 1 || c.MaxInFlight < 1 || c.BreakerFailures < 1 || c.MaxMessageBytes < 1024 {
		errs = append(errs, errors.New("ORDERSYS_RELAY_BATCH_SIZE, _LANES, _MAX_IN_FLIGHT, _BREAKER_FAILURES must be at least 1 and ORDERSYS_KAFKA_MAX_MESSAGE_BYTES at least 1024"))
	}
	if c.Partitions < 1 || c.ReplicationFactor < 1 {
		errs = append(errs, errors.New("ORDERSYS_KAFKA_PARTITIONS and ORDERSYS_KAFKA_REPLICATION_FACTOR must be at least 1"))
	}
	if c.RetentionMs != -1 && c.RetentionMs < 1 {
		errs = append(errs, errors.New("ORDERSYS_KAFKA_RETENTION_MS must be -1 (keep every event) or positive"))
	}
	if err := c.Topics.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// TopicFor maps an aggregate type to its configured topic.
func (c Config) TopicFor(aggregateType string) string {
	switch aggregateType {
	case "Order":
		return c.OrderTopic
	case "Customer":
		return c.CustomerTopic
	}
	b := []byte(aggregateType)
	for i, ch := range b {
		if ch >= 'A' && ch <= 'Z' {
			b[i] = ch + 'a' - 'A'
		}
	}
	return string(b) + "-events"
}
