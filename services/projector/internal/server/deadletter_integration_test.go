package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/segmentio/kafka-go"

	"github.com/ordersys/ordersys/pkg/cql/cqlfault"
	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/services/projector/internal/app"
	"github.com/ordersys/ordersys/services/projector/internal/consumer"
)

// TestDeadLetterIsRecordedOnceTheTableAnswers: a poison message's dead letter is published to
// its topic and then recorded in the dead_letters table, where ordersysctl lists and re-drives
// it. The table is reached through a real TCP fault proxy that resets every connection for a
// while. The record used to be best effort: a failed write, or a consumer stopped between the
// two steps (its context ended, so the write failed), still committed the message, leaving a
// dead letter on the topic and none in the table. Now the record is retried, and a consumer
// stopped before it records leaves the message uncommitted for the next one.
func TestDeadLetterIsRecordedOnceTheTableAnswers(t *testing.T) {
	e := newEnv(t)
	proxy := cqlfault.Start(t)
	dl := consumer.NewDeadLetters(e.kafka, proxy.Session(t, e.keyspace, 2*time.Second))
	t.Cleanup(func() { _ = dl.Close() })
	e.deps.DeadLetters = dl
	handler := app.NewOrdersHandler(readmodel.NewOrderTables(e.s, 1), e.store)
	run := func() func() { return e.runConsumer(consumer.Config{Topics: []string{e.orderTopic}, Handler: handler}) }
	// poison writes an undecodable message and returns a wait for its dead letter, the n-th, to be
	// counted (the old code counted it unrecorded) or its record retried (the new code).
	poison := func() (pending func(n float64)) {
		t.Helper()
		retried := metric(e.deps.Metrics.Retries, readmodel.ProjectionOrders)
		if err := e.w.WriteMessages(e.ctx(), kafka.Message{Topic: e.orderTopic, Key: []byte(gocql.TimeUUID().String()),
			Value: []byte("not a protobuf envelope")}); err != nil {
			t.Fatal(err)
		}
		return func(n float64) {
			t.Helper()
			eventually(t, 30*time.Second, func() error {
				if metric(e.deps.Metrics.DeadLetters, readmodel.ProjectionOrders, app.ReasonUndecodable) >= n ||
					metric(e.deps.Metrics.Retries, readmodel.ProjectionOrders) > retried {
					return nil
				}
				return fmt.Errorf("dead letter %v neither counted nor retried", n)
			})
		}
	}
	dlqTopic := consumer.DLQTopic(e.orderTopic)
	rows := func(want int) func() error {
		return func() error {
			var n int
			if err := e.s.Query(`SELECT count(*) FROM dead_letters WHERE topic = ?`, dlqTopic).Scan(&n); err != nil {
				return err
			}
			if n != want {
				return fmt.Errorf("%d dead_letters rows, want %d", n, want)
			}
			return nil
		}
	}
	const reset = `{"name":"reset","type":"reset_peer","stream":"downstream","attributes":{"timeout":0}}`

	// 1. The consumer stops while the table is unreachable, between publishing and recording.
	proxy.AddToxic(t, reset)
	stop := run()
	pending := poison()
	readAll(t, e.kafka.Brokers, dlqTopic, 1)
	pending(1)
	stop()
	proxy.RemoveToxic("reset")
	stop = run()
	eventually(t, 60*time.Second, rows(1))
	e.deadLettered(app.ReasonUndecodable, 1)
	stop()

	// 2. The table is unreachable for a while under a running consumer.
	proxy.AddToxic(t, reset)
	run()
	poison()(2)
	proxy.RemoveToxic("reset")
	eventually(t, 60*time.Second, rows(2))
	e.deadLettered(app.ReasonUndecodable, 2)
}

// TestDeadLetterRecordedAgainAfterALostAnswerIsOneRow: the dead_letters table is reached through
// a real TCP fault proxy that holds its answers past the session's timeout, so each record
// reaches Cassandra and is written while the consumer sees a timeout and retries it. Each retry
// used to write a new row (a new time UUID per attempt): one dead letter listed several times
// by ordersysctl, and re-driven as often. Now every attempt writes the same row.
func TestDeadLetterRecordedAgainAfterALostAnswerIsOneRow(t *testing.T) {
	e := newEnv(t)
	proxy := cqlfault.Start(t)
	dl := consumer.NewDeadLetters(e.kafka, proxy.Session(t, e.keyspace, time.Second))
	t.Cleanup(func() { _ = dl.Close() })
	e.deps.DeadLetters = dl
	handler := app.NewOrdersHandler(readmodel.NewOrderTables(e.s, 1), e.store)
	e.runConsumer(consumer.Config{Topics: []string{e.orderTopic}, Handler: handler})
	dlqTopic := consumer.DLQTopic(e.orderTopic)
	rows := func() int {
		t.Helper()
		var n int
		if err := e.s.Query(`SELECT count(*) FROM dead_letters WHERE topic = ?`, dlqTopic).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	poison := func() {
		t.Helper()
		if err := e.w.WriteMessages(e.ctx(), kafka.Message{Topic: e.orderTopic, Key: []byte(gocql.TimeUUID().String()),
			Value: []byte("not a protobuf envelope")}); err != nil {
			t.Fatal(err)
		}
	}

	// A first dead letter while the table answers: its INSERT is prepared on the proxied session
	// (a prepare whose answer is late fails, and the INSERT would never be sent).
	poison()
	e.deadLettered(app.ReasonUndecodable, 1)
	if n := rows(); n != 1 {
		t.Fatalf("%d dead_letters rows, want 1", n)
	}

	proxy.AddToxic(t, `{"name":"slow","type":"latency","stream":"downstream","attributes":{"latency":1500}}`)
	retried := metric(e.deps.Metrics.Retries, readmodel.ProjectionOrders)
	poison()
	readAll(t, e.kafka.Brokers, dlqTopic, 2)
	// Records written and timed out: the row is there, and the consumer is retrying it.
	eventually(t, 30*time.Second, func() error {
		if n := rows(); n < 2 {
			return fmt.Errorf("second dead letter not in the table yet")
		}
		if r := metric(e.deps.Metrics.Retries, readmodel.ProjectionOrders); r < retried+2 {
			return fmt.Errorf("record retried %v times, want 2", r-retried)
		}
		return nil
	})
	if got := metric(e.deps.Metrics.DeadLetters, readmodel.ProjectionOrders, app.ReasonUndecodable); got != 1 {
		t.Fatalf("%v dead letters counted while the second one's record timed out, want 1", got)
	}
	proxy.RemoveToxic("slow")
	e.deadLettered(app.ReasonUndecodable, 2)
	if n := rows(); n != 2 {
		t.Fatalf("%d dead_letters rows for two dead letters, want 2", n)
	}
}
