package relay

import (
	"errors"
	"log/slog"
	"time"

	"github.com/sony/gobreaker/v2"
)

// ErrBrokerUnavailable is returned instead of publishing while the circuit breaker is open.
var ErrBrokerUnavailable = errors.New("broker unavailable: circuit breaker open")

// BreakerConfig tunes the circuit breaker around the broker.
type BreakerConfig struct {
	// Failures is the number of consecutive failed publish calls that opens the breaker (default 3).
	Failures uint32
	// OpenTimeout is how long the breaker stays open before letting one probe call through
	// (default 2s).
	OpenTimeout time.Duration
}

// Breaker is a circuit breaker around publish calls. A call counts as failed when every record in
// it failed for a reason that is not the record's own (broker down, timeout); one record's
// permanent trouble, or a partial failure, does not count.
type Breaker struct {
	cb *gobreaker.TwoStepCircuitBreaker[struct{}]
}

// NewBreaker returns a closed breaker reporting its state to m.
func NewBreaker(cfg BreakerConfig, m *Metrics, logger *slog.Logger) *Breaker {
	if cfg.Failures == 0 {
		cfg.Failures = 3
	}
	if cfg.OpenTimeout <= 0 {
		cfg.OpenTimeout = 2 * time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	st := gobreaker.Settings{
		Name:        "kafka",
		MaxRequests: 1,
		Timeout:     cfg.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.Failures },
		OnStateChange: func(name string, from, to gobreaker.State) {
			logger.Warn("circuit breaker changed state", "breaker", name, "from", from.String(), "to", to.String())
			if m != nil {
				m.BreakerState.Set(stateValue(to))
				m.BreakerChanges.WithLabelValues(to.String()).Inc()
			}
		},
	}
	return &Breaker{cb: gobreaker.NewTwoStepCircuitBreaker[struct{}](st)}
}

func stateValue(s gobreaker.State) float64 {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}

// Allow says whether a publish call may go out now; when it may, done must be called with the
// call's outcome (nil for success).
func (b *Breaker) Allow() (done func(error), ok bool) {
	d, err := b.cb.Allow()
	if err != nil {
		return nil, false
	}
	return d, true
}

// State returns "closed", "half-open" or "open".
func (b *Breaker) State() string { return b.cb.State().String() }
