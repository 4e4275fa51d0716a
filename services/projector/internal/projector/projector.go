// Package projector builds the ordersys read models from the event topics.
//
// Each projection (readmodel.ProjectionOrders, readmodel.ProjectionCustomers) is built by a
// consumer group per table version (GroupID): the Supervisor keeps one Consumer running for
// every version that must be written (the active one, one being rebuilt, and the previous one
// for a grace period after a switch). A Consumer processes each partition in order and hands
// each decoded event to the projection's Handler, which applies it only when its sequence is
// the next one of the read-model row: a duplicate is skipped and counted, a gap is healed from
// the event store, and a poison message goes to <topic>.projector.dlq. Offsets are committed only
// after the read-model writes. Rebuild replays a projection into a fresh table version and
// switches readers to it once it has caught up.
package projector

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/grpcx"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

// Config is what the projector core needs to know besides its dependencies.
type Config struct {
	// Kafka is the cluster read from.
	Kafka okafka.Cluster
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
	// CommitInterval is passed to the consumers (default 250ms).
	CommitInterval time.Duration
	// StallAfter is passed to the consumers (default DefaultStallAfter).
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

// Deps are the projector's dependencies.
type Deps struct {
	// Session is the CQL session on the ordersys keyspace.
	Session *gocql.Session
	// Events heals gaps (the event store).
	Events EventSource
	// Registry decodes and upcasts event payloads.
	Registry *es.Registry
	// DeadLetters receives poison messages.
	DeadLetters *DeadLetters
	// Metrics receives the counters.
	Metrics *Metrics
	// Decode reports, loudly, messages that cannot be decoded (nil: only the dead letter).
	Decode *grpcx.DecodeWatch
	// Logger receives progress and failures.
	Logger *slog.Logger
	// Stalls reports partitions that cannot progress on the health service
	// HealthServiceProgress (nil: only the metric).
	Stalls *Stalls
}

// NewHandler returns the handler that builds version v of a projection.
func NewHandler(d Deps, projection string, v int) (StreamHandler, error) {
	switch projection {
	case readmodel.ProjectionOrders:
		return NewOrdersHandler(readmodel.NewOrderTables(d.Session, v), d.Events), nil
	case readmodel.ProjectionCustomers:
		return NewCustomersHandler(readmodel.NewCustomerTables(d.Session, v), d.Events), nil
	default:
		return nil, fmt.Errorf("unknown projection %q", projection)
	}
}

// NewProjectionConsumer returns the consumer that builds version v of a projection.
func NewProjectionConsumer(cfg Config, d Deps, projection string, v int) (*Consumer, error) {
	cfg = cfg.withDefaults()
	h, err := NewHandler(d, projection, v)
	if err != nil {
		return nil, err
	}
	return NewConsumer(ConsumerConfig{
		Kafka:          cfg.Kafka,
		GroupID:        GroupID(cfg.GroupBase, projection, v),
		Topics:         cfg.Topics(projection),
		Projection:     projection,
		Version:        v,
		Handler:        h,
		Registry:       d.Registry,
		DeadLetters:    d.DeadLetters,
		Metrics:        d.Metrics,
		Decode:         d.Decode,
		Logger:         d.Logger,
		CommitInterval: cfg.CommitInterval,
		StallAfter:     cfg.StallAfter,
		Stalls:         d.Stalls,
	}), nil
}

// Supervisor keeps a consumer running for every version of every projection that must be
// written, following projection_versions.
type Supervisor struct {
	cfg Config
	d   Deps

	mu      sync.Mutex
	running map[versionKey]*runningConsumer
	wg      sync.WaitGroup
}

type versionKey struct {
	projection string
	version    int
}

type runningConsumer struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// NewSupervisor returns a supervisor; Run starts it.
func NewSupervisor(cfg Config, d Deps) *Supervisor {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return &Supervisor{cfg: cfg.withDefaults(), d: d, running: map[versionKey]*runningConsumer{}}
}

// Run reconciles the running consumers with projection_versions every PollInterval until ctx
// ends, then stops every consumer (committing what was processed) and returns.
func (s *Supervisor) Run(ctx context.Context) error {
	defer s.stopAll()
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		s.reconcile(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Running returns the versions being written per projection.
func (s *Supervisor) Running() map[string][]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]int{}
	for k := range s.running {
		out[k.projection] = append(out[k.projection], k.version)
	}
	return out
}

func (s *Supervisor) reconcile(ctx context.Context) {
	for _, p := range readmodel.Projections() {
		v, err := readmodel.LoadVersions(ctx, s.d.Session, p)
		if err != nil {
			if ctx.Err() == nil {
				s.d.Logger.Warn("read projection versions; keeping the running consumers", "projection", p, "err", err)
			}
			continue
		}
		want := map[int]bool{}
		for _, n := range v.Writable(time.Now(), s.cfg.RetireGrace) {
			want[n] = true
		}
		s.mu.Lock()
		for k, rc := range s.running {
			if k.projection == p && !want[k.version] {
				s.d.Logger.Info("stopping consumer of a retired version", "projection", p, "version", k.version)
				rc.cancel()
				delete(s.running, k)
			}
		}
		for n := range want {
			k := versionKey{p, n}
			if _, ok := s.running[k]; ok {
				continue
			}
			c, err := NewProjectionConsumer(s.cfg, s.d, p, n)
			if err != nil {
				s.d.Logger.Error("create consumer", "projection", p, "version", n, "err", err)
				continue
			}
			cctx, cancel := context.WithCancel(ctx)
			rc := &runningConsumer{cancel: cancel, done: make(chan struct{})}
			s.running[k] = rc
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer close(rc.done)
				if err := c.Run(cctx); err != nil {
					s.d.Logger.Error("consumer stopped", "projection", p, "version", n, "err", err)
				}
				s.mu.Lock()
				if s.running[k] == rc { // stopped on its own: the next pass restarts it
					delete(s.running, k)
				}
				s.mu.Unlock()
			}()
		}
		s.mu.Unlock()
	}
}

func (s *Supervisor) stopAll() {
	s.mu.Lock()
	for k, rc := range s.running {
		rc.cancel()
		delete(s.running, k)
	}
	s.mu.Unlock()
	s.wg.Wait()
}
