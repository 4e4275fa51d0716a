package server

import (
	"errors"
	"fmt"
	"time"

	"github.com/ordersys/ordersys/pkg/config"
)

// Config is the command service's configuration.
type Config struct {
	config.Common
	// GRPC is the gRPC server's TLS, tokens and request bounds.
	GRPC config.GRPCServer
	// PII is the encryption of customers' personal data.
	PII config.PII
	// SnapshotEvery takes a snapshot of an aggregate every that many events (0 disables).
	SnapshotEvery int `env:"ORDERSYS_SNAPSHOT_EVERY" default:"100"`
	// MaxRetries bounds how often a command that lost a race is decided again.
	MaxRetries int `env:"ORDERSYS_COMMAND_MAX_RETRIES" default:"5"`
	// DedupTTL is how long command ids (and rejected command ids) are remembered.
	DedupTTL time.Duration `env:"ORDERSYS_DEDUP_TTL" default:"24h"`
	// DedupMaxCommands is how many command ids one aggregate remembers at most: recording one
	// more forgets the oldest.
	DedupMaxCommands int `env:"ORDERSYS_DEDUP_MAX_COMMANDS" default:"1000"`
	// Topics are written into the outbox rows of Order and Customer events (the relay publishes
	// each row to the topic it names).
	config.Topics
}

// Defaults returns the configuration before the environment is read.
func Defaults() Config {
	return Config{Common: config.Defaults(config.CommandGRPCAddr, config.CommandMetricsAddr)}
}

// Validate checks the values that have no sensible meaning when out of range.
func (c Config) Validate() error {
	if c.SnapshotEvery < 0 || c.MaxRetries < 0 || c.DedupTTL < time.Second {
		return errors.New("ORDERSYS_SNAPSHOT_EVERY and ORDERSYS_COMMAND_MAX_RETRIES must not be negative, ORDERSYS_DEDUP_TTL must be at least 1s")
	}
	if c.DedupMaxCommands < 1 {
		return fmt.Errorf("ORDERSYS_DEDUP_MAX_COMMANDS must be at least 1, got %d", c.DedupMaxCommands)
	}
	return c.Topics.Validate()
}
