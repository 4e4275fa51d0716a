package e2e_test

import (
	"testing"

	"github.com/ordersys/ordersys/pkg/kafka/kafkatest"
)

// chaosBroker is the chaos system's private Kafka node (the shared one serves other packages'
// tests at the same time and is never restarted).
type chaosBroker struct{ b *kafkatest.Broker }

func startChaosKafka(t *testing.T) chaosBroker { return chaosBroker{kafkatest.Start(t)} }

// Addr is the broker's bootstrap address.
func (c chaosBroker) Addr() string { return c.b.Addr() }

// Restart kills the broker (SIGKILL) and starts it again on the same ports and data.
func (c chaosBroker) Restart() {
	c.b.Kill()
	c.b.Restart()
}
