package config

import "errors"

// Topics names the event topics, one fact shared by three services: the command service writes
// them into the outbox rows, the relay publishes to them (creating them with their .dlq), the
// projector consumes them.
type Topics struct {
	// OrderTopic carries Order events.
	OrderTopic string `env:"ORDERSYS_ORDER_TOPIC" default:"order-events"`
	// CustomerTopic carries Customer events.
	CustomerTopic string `env:"ORDERSYS_CUSTOMER_TOPIC" default:"customer-events"`
}

// Validate checks that both topics are named.
func (t Topics) Validate() error {
	if t.OrderTopic == "" || t.CustomerTopic == "" {
		return errors.New("ORDERSYS_ORDER_TOPIC and ORDERSYS_CUSTOMER_TOPIC must not be empty")
	}
	return nil
}
