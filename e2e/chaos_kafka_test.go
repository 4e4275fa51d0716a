package e2e_test

import (
	"testing"

	"github.com/ordersys/ordersys/pkg/testinfra"
)

// chaosBroker is the chaos system's Kafka.
type chaosBroker interface {
	Addr() string
	Restart()
}

type sharedBroker struct{}

func (sharedBroker) Addr() string { return testinfra.KafkaBrokers()[0] }
func (sharedBroker) Restart()     {}

func startChaosKafka(t *testing.T) chaosBroker { return sharedBroker{} }
