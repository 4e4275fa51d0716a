package consumer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ordersys/ordersys/services/projector/internal/app"
)

// fetchRetryPause is the pause after a failed fetch or group join before the next attempt.
const fetchRetryPause = time.Second

// Run consumes until ctx ends, then stops the partition workers (a message being processed is
// abandoned uncommitted and redelivered later), commits the processed messages, leaves the
// group and returns nil. It returns an error only when the group cannot be used.
//
// Each generation of the group (one assignment of partitions to members) runs its own workers,
// one per assigned partition, on the generation's context: when a rebalance ends the
// generation, every worker stops before its next write, buffered messages and retries
// included, and kafka-go rejoins the group only after all of them have returned. So the next
// owner of a partition starts only once this member's work on it has stopped; a write already
// sent to Cassandra when the generation ended, or a member evicted while paused, is covered by
// the version-ordered write timestamps of pkg/readmodel (docs/read-models.md).
func (c *Consumer) Run(ctx context.Context) error {
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                    c.cfg.GroupID,
		Brokers:               c.cfg.Kafka.Brokers,
		Dialer:                c.cfg.Kafka.Dialer(10 * time.Second),
		Topics:                c.cfg.Topics,
		StartOffset:           kafka.FirstOffset,
		WatchPartitionChanges: true,
		// A member that fails to reach the coordinator keeps trying; errors surface in logs.
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			c.cfg.Logger.Debug("kafka consumer group: " + fmt.Sprintf(msg, args...))
		}),
	})
	if err != nil {
		return fmt.Errorf("consumer group %s: %w", c.cfg.GroupID, err)
	}
	c.cfg.Logger.Info("consumer started", "topics", c.cfg.Topics)
	defer func() {
		// Ends the current generation, waits for its workers and its last commit, leaves.
		if err := cg.Close(); err != nil {
			c.cfg.Logger.Warn("close consumer group", "err", err)
		}
		c.cfg.Logger.Info("consumer stopped")
	}()
	for {
		gen, err := cg.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return nil
			}
			c.cfg.Logger.Warn("join consumer group", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(fetchRetryPause):
			}
			continue
		}
		c.runGeneration(gen)
	}
}

// runGeneration starts the generation's partition workers and its committer; they stop when
// the generation ends.
func (c *Consumer) runGeneration(gen *kafka.Generation) {
	if k, ok := c.cfg.Handler.(app.RowKeeper); ok {
		k.ForgetRows() // the previous generation's workers have all returned
	}
	done := &processed{next: map[topicPartition]int64{}}
	var workers sync.WaitGroup
	n := 0
	for topic, assigned := range gen.Assignments {
		for _, a := range assigned {
			n++
			workers.Add(1)
			gen.Start(func(gctx context.Context) {
				defer workers.Done()
				c.consumePartition(gctx, topicPartition{topic, a.ID}, a.Offset, done)
			})
		}
	}
	c.cfg.Logger.Info("generation started", "generation", gen.ID, "partitions", n)
	gen.Start(func(gctx context.Context) {
		t := time.NewTicker(c.cfg.CommitInterval)
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				// The workers have stopped: commit what they finished. The coordinator still
				// accepts this generation's commits while the group waits for this member.
				workers.Wait()
				c.commit(gen, done)
				return
			case <-t.C:
				c.commit(gen, done)
			}
		}
	})
}

type topicPartition struct {
	topic     string
	partition int
}

// processed holds, per partition, the offset after the last message done with and not yet
// committed.
type processed struct {
	mu   sync.Mutex
	next map[topicPartition]int64
}

func (p *processed) set(tp topicPartition, next int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next[tp] = next
}

// commit commits the processed offsets of the generation; what fails is tried again on the
// next tick.
func (c *Consumer) commit(gen *kafka.Generation, p *processed) {
	p.mu.Lock()
	pending := maps.Clone(p.next)
	p.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	offsets := map[string]map[int]int64{}
	for tp, next := range pending {
		if offsets[tp.topic] == nil {
			offsets[tp.topic] = map[int]int64{}
		}
		offsets[tp.topic][tp.partition] = next
	}
	if err := gen.CommitOffsets(offsets); err != nil {
		c.cfg.Logger.Warn("commit offsets", "generation", gen.ID, "offsets", offsets, "err", err)
		return
	}
	p.mu.Lock()
	for tp, next := range pending {
		if p.next[tp] == next {
			delete(p.next, tp)
		}
	}
	p.mu.Unlock()
}

// consumePartition processes one partition's messages in order from offset until the
// generation ends.
func (c *Consumer) consumePartition(gctx context.Context, tp topicPartition, offset int64, done *processed) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   c.cfg.Kafka.Brokers,
		Dialer:    c.cfg.Kafka.Dialer(10 * time.Second),
		Topic:     tp.topic,
		Partition: tp.partition,
		MinBytes:  1,
		MaxBytes:  10 << 20,
		MaxWait:   250 * time.Millisecond,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			c.cfg.Logger.Debug("kafka partition reader: " + fmt.Sprintf(msg, args...))
		}),
	})
	defer func() {
		if err := r.Close(); err != nil {
			c.cfg.Logger.Warn("close partition reader", "topic", tp.topic, "partition", tp.partition, "err", err)
		}
	}()
	if err := r.SetOffset(offset); err != nil {
		c.cfg.Logger.Error("set partition offset", "topic", tp.topic, "partition", tp.partition, "offset", offset, "err", err)
		<-gctx.Done() // a worker that returns early would end the generation for everyone
		return
	}
	partition := strconv.Itoa(tp.partition)
	// The lanes (keylanes.go): a lane that stops before a message is done with (the generation
	// ended) stops the others and the reader; what is done is committed, the rest redone by the
	// next owner.
	lctx, stop := context.WithCancel(gctx)
	defer stop()
	window := newOffsetWindow()
	defer c.cfg.Metrics.lag.track(lagKey{c.labels[0], c.labels[1], tp.topic, partition}, window)()
	finished := func(m kafka.Message) {
		// Under the window's lock, so a partition's commit offset only grows.
		window.finish(m.Offset, func(next int64) {
			done.set(tp, next)
			c.cfg.Metrics.ConsumerLag.WithLabelValues(c.labels[0], c.labels[1], m.Topic, partition).
				Set(float64(max(m.HighWaterMark-next, 0)))
		})
	}
	lanes := make([]chan kafka.Message, c.cfg.KeyLanes)
	var running sync.WaitGroup
	for i := range lanes {
		lanes[i] = make(chan kafka.Message, keyLaneDepth)
		running.Go(func() { c.runLane(gctx, lctx, stop, lanes[i], finished) })
	}
	defer func() {
		for _, l := range lanes {
			close(l)
		}
		running.Wait()
	}()
	for {
		m, err := r.FetchMessage(lctx)
		if err != nil {
			if lctx.Err() != nil {
				return
			}
			c.cfg.Logger.Warn("fetch message", "topic", tp.topic, "partition", tp.partition, "err", err)
			select {
			case <-lctx.Done():
				return
			case <-time.After(fetchRetryPause):
			}
			continue
		}
		window.add(m.Offset, m.Time)
		select {
		case lanes[KeyLane(laneKey(m), len(lanes))] <- m:
		case <-lctx.Done():
			return
		}
	}
}
