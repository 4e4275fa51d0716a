// Package retry is the services' one loop for a step that must succeed before they can go on
// (connect to the store, create the topics) or that must run again when it stops (a relay's
// source): it calls the step until it succeeds or the context ends, waiting between attempts
// with cenkalti/backoff's randomised exponential back-off, from half a second up to a maximum.
package retry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Until calls op until it returns nil, waiting between attempts at most maxWait (growing from
// about half a second); failed, when not nil, is called after each failure with its attempt
// number (from 1), the error and the wait before the next attempt. When ctx ends first, it
// returns ctx's error joined with op's last one.
func Until(ctx context.Context, maxWait time.Duration, op func() error, failed func(attempt int, err error, wait time.Duration)) error {
	b := backoff.NewExponentialBackOff()
	// A wait is the interval ± RandomizationFactor (50 %): capping the interval at two thirds of
	// maxWait keeps every wait within it.
	b.MaxInterval = time.Duration(float64(maxWait) / (1 + b.RandomizationFactor))
	b.InitialInterval = min(b.InitialInterval, b.MaxInterval)
	attempt := 0
	var last error
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		attempt++
		last = op()
		return struct{}{}, last
	}, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(0), backoff.WithNotify(func(err error, wait time.Duration) {
		if failed != nil {
			failed(attempt, err, wait)
		}
	}))
	if err != nil && last != nil && !errors.Is(err, last) {
		return fmt.Errorf("%w (last attempt: %w)", err, last)
	}
	return err
}
