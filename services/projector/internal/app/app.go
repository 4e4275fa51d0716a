// Package app holds the projector's use cases: it builds the ordersys read models from the
// event topics.
//
// Each projection (readmodel.ProjectionOrders, readmodel.ProjectionCustomers) is built by a
// consumer group per table version (GroupID): the Supervisor keeps one consumer running for
// every version that must be written (the active one, one being rebuilt, and the previous one
// for a grace period after a switch). A consumer (the Consumers port, internal/consumer)
// processes each partition in order and hands each decoded event to the projection's Handler,
// which applies it only when its sequence is the next one of the read-model row: a duplicate is
// skipped and counted, a gap is healed from the event store, and a poison message (a
// *PoisonError) goes to <topic>.projector.dlq. Offsets are committed only after the read-model
// writes. Rebuild replays a projection into a fresh table version and
// switches readers to it once it has caught up; Admin holds the admin service's use cases.
//
// The package reaches storage and Kafka only through its ports (ports.go): VersionStore and
// Tables (internal/store, on pkg/readmodel), EventSource and EventStoreWalker (pkg/cql's event
// store), Consumers (internal/consumer, the kafka-go consumer group driver) and Groups
// (internal/kafkaadmin, consumer group offsets).
package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

// Config is what the projector core needs to know besides its dependencies.
type Config struct {
	// GroupBase prefixes every consumer group (ORDERSYS_PROJECTOR_GROUP).
	GroupBase string
	// OrderTopic and CustomerTopic are the topics consumed (default: cql.DefaultTopic of the
	// aggregate type, order-events and customer-events).
	OrderTopic, CustomerTopic string
	// PollInterval is how often the Supervisor reads projection_versions (default 2s).
	PollInterval time.Duration
	// RetireGrace is how long the previously active version is still written after a switch,
	// covering readers that cached the old pointer (default 30s, above readmodel's cache TTL).
	RetireGrace time.Duration
	// CommitInterval is passed to the consumers (0: the consumer's default, 250ms).
	CommitInterval time.Duration
	// StallAfter is passed to the consumers (0: the consumer's default, 30s).
	StallAfter time.Duration
}

func (c Config) withDefaults() Config {
	if c.OrderTopic == "" {
		c.OrderTopic = cql.DefaultTopic(order.AggregateType)
	}
	if c.CustomerTopic == "" {
		c.CustomerTopic = cql.DefaultTopic(customer.AggregateType)
	}
	if c.GroupBase == "" {
		c.GroupBase = "ordersys-projector"
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 2 * time.Second
	}
	if c.RetireGrace <= 0 {
		c.RetireGrace = 30 * time.Second
	}
	return c
}

// Topics returns the topics a projection consumes.
func (c Config) Topics(projection string) []string {
	c = c.withDefaults()
	if projection == readmodel.ProjectionOrders {
		return []string{c.OrderTopic, c.CustomerTopic}
	}
	return []string{c.CustomerTopic}
}

// GroupID returns the consumer group of a projection version: <base>.<projection>.v<version>.
// A fresh group per version lets a rebuild replay the topics from their beginning.
func GroupID(base, projection string, version int) string {
	return fmt.Sprintf("%s.%s.v%d", base, projection, version)
}

// Deps are the projector's dependencies: its ports and their adapters.
type Deps struct {
	// Versions reads and changes projection_versions.
	Versions VersionStore
	// Tables gives the read-model tables of a version.
	Tables Tables
	// Events heals gaps (the event store; a rebuild from the event store also walks it when it
	// is an EventStoreWalker).
	Events EventSource
	// Registry decodes and upcasts event payloads.
	Registry *es.Registry
	// Consumers runs the consumer group members that build a projection version.
	Consumers Consumers
	// Groups reads and sets the consumer groups' offsets.
	Groups Groups
	// Applied counts the events a rebuild from the event store applies (nil: not counted).
	Applied AppliedCounter
	// Logger receives progress and failures.
	Logger *slog.Logger
}

// NewHandler returns the handler that builds version v of a projection.
func NewHandler(d Deps, projection string, v int) (StreamHandler, error) {
	switch projection {
	case readmodel.ProjectionOrders:
		return NewOrdersHandler(d.Tables.Orders(v), d.Events), nil
	case readmodel.ProjectionCustomers:
		return NewCustomersHandler(d.Tables.Customers(v), d.Events), nil
	default:
		return nil, fmt.Errorf("unknown projection %q", projection)
	}
}

// ConsumerSpec returns what the consumer that builds version v of a projection with handler h
// consumes.
func (c Config) ConsumerSpec(projection string, v int, h Handler) ConsumerSpec {
	c = c.withDefaults()
	return ConsumerSpec{
		GroupID:        GroupID(c.GroupBase, projection, v),
		Topics:         c.Topics(projection),
		Projection:     projection,
		Version:        v,
		Handler:        h,
		CommitInterval: c.CommitInterval,
		StallAfter:     c.StallAfter,
	}
}

// projectionConsumer returns the function that runs the consumer building version v of a
// projection until its context ends.
func projectionConsumer(cfg Config, d Deps, projection string, v int) (func(context.Context) error, error) {
	h, err := NewHandler(d, projection, v)
	if err != nil {
		return nil, err
	}
	spec := cfg.ConsumerSpec(projection, v, h)
	return func(ctx context.Context) error { return d.Consumers.Run(ctx, spec) }, nil
}
