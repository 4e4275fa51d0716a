package app

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/grpcx"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/retry"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/cdcsource"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/outboxpoll"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/relay"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/store"
)

// LeaseName is the lease held by the publishing instance.
const LeaseName = "cdc-relay"

// Relay is one relay instance: it competes for the lease and, while holding it, publishes.
type Relay struct {
	cfg     Config
	s       *gocql.Session
	pub     *okafka.Publisher
	metrics *relay.Metrics
	log     *slog.Logger
	lease   *cql.Lease
	events  *cql.EventStore
	decode  *grpcx.DecodeWatch
	clock   *cql.ClusterClock

	mu   sync.Mutex
	held []int // the shards of the running shard terms
	all  bool  // a term of the whole outbox runs (scylla-cdc)

	// ensuring lets one term at a time create the topics: the shard terms starting together
	// wait for the first instead of each sending the same requests. It guards topicsEnsured:
	// the configured topics were created (or found) once; later terms skip it.
	ensuring      *semaphore.Weighted
	topicsEnsured bool
}

// NewRelay returns a relay instance on the session's keyspace; decode reports events that break
// the envelope contract (nil: only the dead-letter path).
func NewRelay(cfg Config, s *gocql.Session, pub *okafka.Publisher, m *relay.Metrics, decode *grpcx.DecodeWatch, log *slog.Logger) *Relay {
	clock := cql.NewClusterClock(s, nil)
	return &Relay{cfg: cfg, s: s, pub: pub, metrics: m, log: log, decode: decode, clock: clock, ensuring: semaphore.NewWeighted(1),
		lease: cql.NewLease(s, LeaseName, "", cfg.LeaseTTL),
		events: cql.NewEventStore(s, codec.NewRegistry(), cql.Options{
			Topics: map[string]string{"Order": cfg.OrderTopic, "Customer": cfg.CustomerTopic}, Now: clock.Now}),
	}
}

// AdminServer returns the orders.v1.RelayAdminService of this instance: its status (from
// metrics), dead letters and republishing.
func (r *Relay) AdminServer(metrics prometheus.Gatherer) *AdminServer {
	return NewAdminServer(newAdmin(r.cfg, r.s, r.pub), r.events, metrics, r.Owner(), r.Shards)
}

// Owner returns this instance's lease owner id.
func (r *Relay) Owner() string { return r.lease.Owner() }

// Run publishes until ctx ends. The outbox-poll relay splits the outbox shards among the live
// instances, each shard under a lease of its own (runSharded); the scylla-cdc relay reads the
// CDC log, whose streams are not the outbox shards, under one lease for the whole outbox.
func (r *Relay) Run(ctx context.Context) error {
	if err := r.clock.Sync(ctx); err != nil {
		r.log.Warn("cluster clock: not synced yet, using the local clock", "err", err)
	} else {
		r.log.Info("cluster clock synced", "offset", r.clock.Offset())
	}
	go r.clock.Run(ctx, cql.ClusterClockSyncInterval)
	if r.cfg.Source != SourceScyllaCDC {
		return r.runSharded(ctx)
	}
	r.log.Info("waiting for the relay lease", "lease", LeaseName, "owner", r.lease.Owner(), "ttl", r.cfg.LeaseTTL)
	return r.lease.Run(ctx, func(ctx context.Context) error {
		return r.term(ctx, termScope{fence: r.lease, recover: true, lanes: r.cfg.Lanes, maxInFlight: r.cfg.MaxInFlight})
	})
}

// termScope is what one term publishes: every shard (nil shards) or the given ones, fenced by
// the lease that grants it; recover runs the intent recovery too.
type termScope struct {
	shards             []int
	fence              relay.Fence
	recover            bool
	lanes, maxInFlight int
}

// term publishes the scope's outbox shards until ctx ends or its lease is lost: a pipeline of
// its own (its in-memory state is only valid while no other instance publishes these shards)
// and a source reading them.
func (r *Relay) term(ctx context.Context, sc termScope) error {
	r.holding(sc.shards, 1)
	defer r.holding(sc.shards, -1)
	r.log.Info("publishing the outbox", "owner", r.lease.Owner(), "source", r.cfg.Source, "shards", shardsLabel(sc.shards))
	defer func() {
		r.log.Info("stopped publishing", "owner", r.lease.Owner(), "shards", shardsLabel(sc.shards), "cause", context.Cause(ctx))
	}()

	if err := r.ensureTopics(ctx); err != nil {
		return nil // ctx ended
	}
	pipeline := relay.NewPipeline(relay.Config{
		Lanes: sc.lanes, MaxInFlight: sc.maxInFlight, RetryInitial: r.cfg.RetryInitial, RetryMax: r.cfg.RetryMax,
		TopicFor: r.cfg.TopicFor,
	}, relay.Deps{
		Progress: store.NewProgress(r.s), Events: r.events, DeadLetters: cql.NewDeadLetters(r.s),
		Publisher: &ensuringPublisher{Publisher: r.pub, ensure: r.ensureTopic},
		Breaker: relay.NewBreaker(relay.BreakerConfig{Failures: uint32(r.cfg.BreakerFailures), OpenTimeout: r.cfg.BreakerOpenTimeout},
			r.metrics, r.log),
		Metrics: r.metrics, Logger: r.log, Decode: r.decode, Fence: sc.fence,
	})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = pipeline.Run(ctx) }()
	if sc.recover {
		wg.Add(1)
		go func() { defer wg.Done(); r.recover(ctx) }()
	}

	src := r.source(sc.shards)
	// The source runs until the term ends; when it stops before, it starts again.
	_ = retry.Until(ctx, 30*time.Second, func() error {
		err := src.Run(ctx, pipeline)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = errors.New("returned before the term ended")
		}
		return err
	}, func(attempt int, err error, wait time.Duration) {
		r.metrics.SourceRestarts.WithLabelValues(src.Name()).Inc()
		r.log.Error("source stopped, restarting", "source", src.Name(), "attempt", attempt, "wait", wait, "err", err)
	})
	wg.Wait()
	return nil
}

// source reads the outbox shards given (nil: all).
func (r *Relay) source(shards []int) relay.Source {
	if r.cfg.Source == SourceScyllaCDC {
		cons, err := gocql.ParseConsistencyWrapper(strings.ToUpper(r.cfg.CQL.Consistency))
		if err != nil {
			cons = gocql.Quorum
		}
		return cdcsource.New(cdcsource.Config{
			// The confidence window is not the poller's safety window: cdc$time is a client-side
			// timestamp, so the library's own default (30 s) stays, and a backstop reader trails it
			// by the rescan window.
			Keyspace: r.cfg.CQL.Keyspace, ProgressTable: r.cfg.CDCProgressTable,
			RescanLag: r.cfg.RescanWindow, RescanInterval: r.cfg.RescanInterval,
			PollInterval: r.cfg.PollInterval, ChangeAgeLimit: r.cfg.StartLookback, Consistency: cons,
		}, r.s, r.metrics, r.log)
	}
	return outboxpoll.New(outboxpoll.Config{
		PollInterval: r.cfg.PollInterval, SafetyWindow: r.cfg.SafetyWindow, RescanWindow: r.cfg.RescanWindow,
		RescanInterval: r.cfg.RescanInterval, BucketSkew: r.cfg.BucketSkew, StartLookback: r.cfg.StartLookback,
		BatchSize: r.cfg.BatchSize, Now: r.clock.Now, Shards: shards,
	}, r.s, r.metrics, r.log)
}

// topicSpecs are the topics created at the start of a term: the event topics with the
// configured retention, their .dlq with the broker's.
func (r *Relay) topicSpecs(names ...string) []okafka.TopicSpec {
	var specs []okafka.TopicSpec
	for _, n := range names {
		specs = append(specs, okafka.EventTopic(n, r.cfg.Partitions, r.cfg.ReplicationFactor, r.cfg.RetentionMs),
			okafka.TopicSpec{Name: okafka.DLQTopic(n), Partitions: r.cfg.Partitions, ReplicationFactor: r.cfg.ReplicationFactor})
	}
	return specs
}

// checkRetention logs a warning for each event topic whose retention.ms differs from the
// configured one (a topic created before, by hand or by a broker's auto-creation, is left as it
// is: change it with the broker's tools).
func (r *Relay) checkRetention(ctx context.Context, topics ...string) {
	want := strconv.FormatInt(r.cfg.RetentionMs, 10)
	for _, t := range topics {
		got, err := okafka.TopicConfigs(ctx, r.pub.Cluster(), t, okafka.ConfigRetentionMs)
		if err != nil {
			r.log.Warn("cannot read the topic's retention", "topic", t, "err", err)
			continue
		}
		if v, ok := got[okafka.ConfigRetentionMs]; ok && v != want {
			r.log.Warn("existing topic has another retention than ORDERSYS_KAFKA_RETENTION_MS; a projector rebuild replays only what the topic still holds (gaps are healed from the event store)",
				"topic", t, "retention_ms", v, "want", want)
		}
	}
}

// ensureTopics creates the configured topics, retrying until it works or ctx ends.
func (r *Relay) ensureTopics(ctx context.Context) error {
	if err := r.ensuring.Acquire(ctx, 1); err != nil {
		return err
	}
	defer r.ensuring.Release(1)
	if r.topicsEnsured {
		return nil // once per process: every shard's term starts with this
	}
	defer func() { r.topicsEnsured = ctx.Err() == nil }()
	specs := r.topicSpecs(r.cfg.OrderTopic, r.cfg.CustomerTopic)
	return retry.Until(ctx, 10*time.Second, func() error {
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		err := okafka.EnsureTopics(tctx, r.pub.Cluster(), specs...)
		if err == nil {
			r.checkRetention(tctx, r.cfg.OrderTopic, r.cfg.CustomerTopic)
		}
		return err
	}, func(attempt int, err error, wait time.Duration) {
		r.log.Warn("cannot create topics yet", "attempt", attempt, "wait", wait, "err", err)
	})
}

// ensureTopic creates a topic met at run time (a row naming a topic not configured).
func (r *Relay) ensureTopic(ctx context.Context, topic string) {
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	spec := okafka.EventTopic(topic, r.cfg.Partitions, r.cfg.ReplicationFactor, r.cfg.RetentionMs)
	if strings.HasSuffix(topic, okafka.DLQSuffix) {
		spec = okafka.TopicSpec{Name: topic, Partitions: r.cfg.Partitions, ReplicationFactor: r.cfg.ReplicationFactor}
	}
	if err := okafka.EnsureTopics(tctx, r.pub.Cluster(), spec); err != nil {
		r.log.Warn("cannot create topic", "topic", topic, "err", err)
	}
}

// recover settles abandoned append intents every RecoveryInterval (the roll-forward recovery of
// docs/outbox-protocol.md).
func (r *Relay) recover(ctx context.Context) {
	t := time.NewTicker(r.cfg.RecoveryInterval)
	defer t.Stop()
	for {
		st, err := r.events.RecoverIntents(ctx, r.cfg.RecoveryGrace)
		if ctx.Err() != nil {
			return
		}
		r.metrics.Recovered.WithLabelValues("committed").Add(float64(st.Committed))
		r.metrics.Recovered.WithLabelValues("discarded").Add(float64(st.Discarded))
		r.metrics.Recovered.WithLabelValues("poison").Add(float64(st.Poison))
		if err != nil {
			r.metrics.StoreErrors.WithLabelValues("recover_intents").Inc()
			r.log.Warn("intent recovery failed", "err", err)
		} else if st.Committed+st.Discarded > 0 {
			r.log.Info("intents recovered", "committed", st.Committed, "discarded", st.Discarded, "young", st.Young)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
