package server

import (
	"errors"
	"time"

	"github.com/ordersys/ordersys/pkg/config"
)

// Config is the query service's configuration.
type Config struct {
	config.Common
	// GRPC is the gRPC server's TLS, tokens and request bounds.
	GRPC config.GRPCServer
	// PII is the encryption of customers' personal data (history and GetCustomerAt decrypt).
	PII config.PII
	// MaxWait bounds how long GetOrder waits for min_version when the call has no deadline.
	MaxWait time.Duration `env:"ORDERSYS_QUERY_MAX_WAIT" default:"10s"`
}

// Defaults returns the configuration before the environment is read.
func Defaults() Config {
	return Config{Common: config.Defaults(config.QueryGRPCAddr, config.QueryMetricsAddr)}
}

// Validate checks the values that have no sensible meaning when out of range.
func (c Config) Validate() error {
	if c.MaxWait < 100*time.Millisecond {
		return errors.New("ORDERSYS_QUERY_MAX_WAIT must be at least 100ms")
	}
	return nil
}
