package app_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/ordersys/ordersys/pkg/codec"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
)

// ---------------------------------------------------------------------------------------------
// Consuming the topic as a downstream service would

type record struct {
	agg       string
	seq       int64
	eventID   string
	partition int
	at        time.Time // when this reader got it
	produced  time.Time // the record's timestamp: when the relay handed it to its producer
	headers   []kafkago.Header
	value     []byte
}

// collector reads a topic in a consumer group of its own.
type collector struct {
	mu      sync.Mutex
	recs    []record
	offsets map[[2]int64]bool
	err     error
}

func collect(t testing.TB, kc okafka.Cluster, topic string) *collector {
	c := &collector{offsets: map[[2]int64]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	// The group must see the topic when it joins (the relay creates it too, the same way).
	tctx, tcancel := context.WithTimeout(ctx, time.Minute)
	defer tcancel()
	if err := okafka.EnsureTopics(tctx, kc, okafka.TopicSpec{Name: topic, Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	r := okafka.NewReader(okafka.ReaderConfig{Cluster: kc, GroupID: "test-" + uuid.NewString(), Topics: []string{topic}, MaxWait: 20 * time.Millisecond})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := r.FetchMessage(ctx) // no commits: a test reader needs none, and they would slow it
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				// The broker may be down on purpose: keep reading.
				c.mu.Lock()
				c.err = err
				c.mu.Unlock()
				time.Sleep(200 * time.Millisecond)
				continue
			}
			h, _ := okafka.ParseHeaders(m.Headers)
			c.mu.Lock()
			// A reader that rejoins its group (no offsets committed) reads records again: those
			// are not duplicates on the topic.
			pos := [2]int64{int64(m.Partition), m.Offset}
			if c.offsets[pos] {
				c.mu.Unlock()
				continue
			}
			c.offsets[pos] = true
			c.recs = append(c.recs, record{agg: string(m.Key), seq: h.Sequence, eventID: h.EventID, partition: m.Partition,
				at: time.Now(), produced: m.Time, headers: m.Headers, value: m.Value})
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done; _ = r.Close() })
	return c
}

func (c *collector) records() []record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]record(nil), c.recs...)
}

// distinct counts distinct (aggregate, sequence) pairs received.
func (c *collector) distinct() int {
	seen := map[string]bool{}
	for _, r := range c.records() {
		seen[fmt.Sprintf("%s#%d", r.agg, r.seq)] = true
	}
	return len(seen)
}

func (c *collector) waitDistinct(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for c.distinct() < n {
		if time.Now().After(deadline) {
			t.Fatalf("received %d distinct events of %d within %s", c.distinct(), n, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// first returns when the collector read its first record.
func (c *collector) first() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.recs) == 0 {
		return time.Time{}
	}
	return c.recs[0].at
}

// steadyRate returns records per second between the first and the last record read.
func (c *collector) steadyRate() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.recs) < 2 {
		return 0
	}
	return float64(len(c.recs)-1) / c.recs[len(c.recs)-1].at.Sub(c.recs[0].at).Seconds()
}

// verify checks that every aggregate's events 1..want[agg] arrived, that per aggregate the
// first delivery of each sequence is in sequence order, that every record carries the contract's
// headers and sits on the partition the Java partitioner picks. It returns the number of
// duplicate deliveries.
func verify(t *testing.T, recs []record, want map[string]int64, partitions int) int {
	t.Helper()
	byAgg := map[string][]record{}
	for _, r := range recs {
		byAgg[r.agg] = append(byAgg[r.agg], r)
	}
	dups := 0
	for agg, max := range want {
		seen := map[int64]bool{}
		var firsts []int64
		for _, r := range byAgg[agg] {
			if seen[r.seq] {
				dups++
				continue
			}
			seen[r.seq] = true
			firsts = append(firsts, r.seq)
		}
		for i, s := range firsts {
			if s != int64(i+1) {
				t.Errorf("aggregate %s: first deliveries %v are not 1..%d in order", agg, firsts, max)
				break
			}
		}
		if int64(len(firsts)) != max {
			t.Errorf("aggregate %s: %d distinct events arrived, want %d", agg, len(firsts), max)
		}
	}
	for _, r := range recs[:min(len(recs), 200)] {
		for _, h := range []string{"event_id", "event_type", "event_version", "aggregate_type", "aggregate_id", "sequence", "correlation_id", "causation_id", "traceparent"} {
			if v, ok := okafka.Header(r.headers, h); !ok || (v == "" && h != "correlation_id") {
				t.Errorf("record %s#%d: header %s missing", r.agg, r.seq, h)
			}
		}
		if p := okafka.PartitionForKey([]byte(r.agg), partitions); p != r.partition {
			t.Errorf("record %s#%d on partition %d, Java partitioner says %d", r.agg, r.seq, r.partition, p)
		}
		env, err := codec.UnmarshalEnvelope(r.value)
		if err != nil || env.AggregateID != r.agg || env.Sequence != r.seq {
			t.Errorf("record %s#%d: value is not its envelope (%v)", r.agg, r.seq, err)
		}
	}
	return dups
}
