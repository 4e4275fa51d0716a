package e2e_test

import (
	"testing"

	"github.com/ordersys/ordersys/pkg/testinfra"
)

// startSecureKafka returns the brokers of the secure system and its settings with those of
// Kafka added.
func startSecureKafka(t *testing.T, dir string, setup *secureSetup) ([]string, []string) {
	t.Helper()
	return testinfra.KafkaBrokers(), setup.env
}
