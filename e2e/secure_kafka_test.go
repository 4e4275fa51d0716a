package e2e_test

import (
	"testing"
)

// startSecureKafka points the secure system at its Kafka broker.
func startSecureKafka(t *testing.T, s *system) {
	t.Helper()
}
