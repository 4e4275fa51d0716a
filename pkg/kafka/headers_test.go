package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	kafkago "github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordersys/ordersys/pkg/es"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
)

func TestEnvelopeHeadersRoundTrip(t *testing.T) {
	env := es.Envelope{
		EventID: "e1", AggregateID: "a1", AggregateType: "Order", Sequence: 42, EventType: "OrderShipped",
		SchemaVersion: 2, CorrelationID: "corr", CausationID: "cmd",
	}
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	hs := okafka.EnvelopeHeaders(env, tp, "")
	names := map[string]bool{}
	for _, h := range hs {
		names[h.Key] = true
	}
	for _, want := range []string{"event_id", "event_type", "event_version", "aggregate_type", "aggregate_id", "sequence", "correlation_id", "causation_id", "traceparent"} {
		if !names[want] {
			t.Errorf("header %q missing from %v", want, names)
		}
	}
	if names["tracestate"] {
		t.Error("empty tracestate should be left out")
	}
	got, err := okafka.ParseHeaders(hs)
	if err != nil {
		t.Fatal(err)
	}
	want := okafka.EventHeaders{EventID: "e1", EventType: "OrderShipped", EventVersion: 2, AggregateType: "Order",
		AggregateID: "a1", Sequence: 42, CorrelationID: "corr", CausationID: "cmd", TraceParent: tp}
	if got != want {
		t.Fatalf("ParseHeaders = %+v, want %+v", got, want)
	}

	ctx := okafka.ContextFromMessage(context.Background(), kafkago.Message{Headers: hs})
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsRemote() || sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || sc.SpanID().String() != "00f067aa0ba902b7" {
		t.Fatalf("extracted span context %v", sc)
	}
}

func TestParseHeadersRejectsIncomplete(t *testing.T) {
	for _, hs := range [][]kafkago.Header{
		nil,
		{{Key: "event_id", Value: []byte("e")}, {Key: "aggregate_id", Value: []byte("a")}},
		{{Key: "event_id", Value: []byte("e")}, {Key: "aggregate_id", Value: []byte("a")}, {Key: "sequence", Value: []byte("x")}},
	} {
		if _, err := okafka.ParseHeaders(hs); err == nil {
			t.Errorf("ParseHeaders(%v) accepted incomplete headers", hs)
		}
	}
}

func TestSetHeaderReplaces(t *testing.T) {
	hs := []kafkago.Header{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}}
	orig := fmt.Sprint(hs)
	out := okafka.SetHeader(hs, "a", "3")
	if v, _ := okafka.Header(out, "a"); v != "3" || len(out) != 2 {
		t.Fatalf("SetHeader = %v", out)
	}
	if fmt.Sprint(hs) != orig {
		t.Fatalf("SetHeader modified its input: %v", hs)
	}
}

func TestIsPermanent(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{okafka.ErrMessageTooLarge, true},
		{fmt.Errorf("produce: %w", kafkago.MessageSizeTooLarge), true},
		{kafkago.InvalidRecord, true},
		{kafkago.NotLeaderForPartition, false},
		{kafkago.RequestTimedOut, false},
		{context.DeadlineExceeded, false},
		{errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), false},
	} {
		if got := okafka.IsPermanent(c.err); got != c.want {
			t.Errorf("IsPermanent(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestPublishRefusesOversizedCalls(t *testing.T) {
	p := okafka.NewPublisher(okafka.PublisherConfig{Cluster: okafka.Cluster{Brokers: []string{"127.0.0.1:1"}}, MaxMessageBytes: 2000})
	defer p.Close()
	ctx := context.Background()
	many := make([]kafkago.Message, okafka.MaxCallRecords+1)
	for i := range many {
		many[i] = kafkago.Message{Topic: "t", Key: []byte("k"), Value: []byte("v")}
	}
	for _, err := range p.Publish(ctx, many) {
		if !errors.Is(err, okafka.ErrCallTooLarge) {
			t.Fatalf("record of a call over %d records: %v, want ErrCallTooLarge", okafka.MaxCallRecords, err)
		}
	}
	heavy := []kafkago.Message{{Topic: "t", Value: make([]byte, 1500)}, {Topic: "t", Value: make([]byte, 1500)}}
	for _, err := range p.Publish(ctx, heavy) {
		if !errors.Is(err, okafka.ErrCallTooLarge) {
			t.Fatalf("record of a call over MaxMessageBytes in total: %v, want ErrCallTooLarge", err)
		}
	}
}
