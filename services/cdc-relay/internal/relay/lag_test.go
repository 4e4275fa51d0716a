package relay_test

import (
	"errors"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/es"
)

// TestLagIsTheAgeOfTheOldestUnpublishedEvent: while the broker refuses, the lag grows with the
// age of the event waiting; once it is published the lag is 0 again, and stays 0 while idle
// (it used to be the time since the last publish, which grows on a caught-up relay).
func TestLagIsTheAgeOfTheOldestUnpublishedEvent(t *testing.T) {
	h := newHarness(t)
	lag := func() float64 {
		families, err := h.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == "ordersys_relay_lag_seconds" {
				return f.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no ordersys_relay_lag_seconds")
		return 0
	}
	if l := lag(); l != 0 {
		t.Fatalf("lag %v before any event, want 0", l)
	}
	h.broker.setFail(func(kafkago.Message) error { return errors.New("broker down") })
	env := h.event(newAgg(), 1)
	c := h.submitRaw(env.AggregateID, 1, env.EventID, mustMarshal(t, env))
	time.Sleep(300 * time.Millisecond)
	if l := lag(); l < 0.25 {
		t.Fatalf("lag %v while an event waits 300 ms, want at least 0.25 s", l)
	}
	h.broker.setFail(nil)
	h.waitSettled(c)
	time.Sleep(200 * time.Millisecond) // idle, caught up
	if l := lag(); l != 0 {
		t.Fatalf("lag %v when caught up, want 0", l)
	}
}

func mustMarshal(t *testing.T, env es.Envelope) []byte {
	t.Helper()
	b, err := codec.MarshalEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTermEndClearsLagAndInFlight: a pipeline whose leadership term ends with an event still
// waiting leaves no lag and nothing in flight behind (the next leader reads the row again), so
// a replica that lost the lease does not report a lag that grows for ever.
func TestTermEndClearsLagAndInFlight(t *testing.T) {
	h := newHarness(t)
	h.broker.setFail(func(kafkago.Message) error { return errors.New("broker down") })
	env := h.event(newAgg(), 1)
	h.submitRaw(env.AggregateID, 1, env.EventID, mustMarshal(t, env))
	time.Sleep(200 * time.Millisecond)
	if testutilGauge(h.metrics.InFlight) != 1 {
		t.Fatalf("in flight %v, want 1", testutilGauge(h.metrics.InFlight))
	}
	h.cancel()
	<-h.done
	families, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "ordersys_relay_lag_seconds" && f.GetMetric()[0].GetGauge().GetValue() != 0 {
			t.Fatalf("lag %v after the term ended, want 0", f.GetMetric()[0].GetGauge().GetValue())
		}
	}
	if v := testutilGauge(h.metrics.InFlight); v != 0 {
		t.Fatalf("in flight %v after the term ended, want 0", v)
	}
}
