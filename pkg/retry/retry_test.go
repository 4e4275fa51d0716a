package retry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/retry"
)

// TestUntilRetriesThenSucceeds: a step failing twice is called three times, each failure
// reported with its attempt and a wait within the bound.
func TestUntilRetriesThenSucceeds(t *testing.T) {
	calls := 0
	var attempts []int
	err := retry.Until(context.Background(), 20*time.Millisecond, func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	}, func(attempt int, err error, wait time.Duration) {
		attempts = append(attempts, attempt)
		if err == nil || wait <= 0 || wait > 20*time.Millisecond {
			t.Errorf("attempt %d: %v, wait %s", attempt, err, wait)
		}
	})
	if err != nil || calls != 3 || len(attempts) != 2 || attempts[0] != 1 || attempts[1] != 2 {
		t.Fatalf("err %v, %d calls, failures reported %v; want nil, 3 calls, [1 2]", err, calls, attempts)
	}
}

// TestUntilStopsWithItsContext: a step that never succeeds is tried until the context ends, and
// the error says both why it stopped and what the last attempt said; past the 15 minutes
// cenkalti/backoff stops at by default there is no limit but the context.
func TestUntilStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	boom := errors.New("store down")
	calls := 0
	err := retry.Until(ctx, 10*time.Millisecond, func() error { calls++; return boom }, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, boom) || calls < 3 {
		t.Fatalf("err %v after %d calls; want the deadline and the last error, after several calls", err, calls)
	}
}
