package app

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

// sliceSource serves LoadRange from a fixed stream (missing sequences stay missing).
type sliceSource struct {
	events []es.Envelope
	err    error
	calls  int
}

func (s *sliceSource) LoadRange(_ context.Context, _ string, from, to int64) ([]es.Envelope, error) {
	s.calls++
	if s.err != nil {
		return nil, s.err
	}
	var out []es.Envelope
	for _, e := range s.events {
		if e.Sequence >= from && e.Sequence <= to {
			out = append(out, e)
		}
	}
	return out, nil
}

func envAt(seq int64) es.Envelope {
	return es.Envelope{AggregateID: "a", AggregateType: "Order", Sequence: seq, EventType: fmt.Sprintf("E%d", seq)}
}

func TestHealerPlan(t *testing.T) {
	full := &sliceSource{events: []es.Envelope{envAt(1), envAt(2), envAt(3), envAt(4)}}
	holey := &sliceSource{events: []es.Envelope{envAt(1), envAt(3)}}
	down := &sliceSource{err: fmt.Errorf("read: %w", es.ErrUnavailable)}
	corrupt := &sliceSource{err: fmt.Errorf("decode: %w", es.ErrUnknownEventType)}
	for _, tc := range []struct {
		name      string
		src       *sliceSource
		version   int64
		seq       int64
		wantSeqs  []int64
		healed    int
		duplicate bool
		poison    string
		transient bool
	}{
		{name: "next", src: full, version: 2, seq: 3, wantSeqs: []int64{3}},
		{name: "first", src: full, version: 0, seq: 1, wantSeqs: []int64{1}},
		{name: "duplicate", src: full, version: 3, seq: 3, duplicate: true},
		{name: "old duplicate", src: full, version: 3, seq: 1, duplicate: true},
		{name: "gap healed", src: full, version: 1, seq: 4, wantSeqs: []int64{2, 3, 4}, healed: 2},
		{name: "gap from nothing", src: full, version: 0, seq: 3, wantSeqs: []int64{1, 2, 3}, healed: 2},
		{name: "gap missing in store", src: holey, version: 1, seq: 4, poison: ReasonGapUnhealable},
		{name: "store down", src: down, version: 1, seq: 4, transient: true},
		{name: "store holds undecodable", src: corrupt, version: 1, seq: 4, poison: ReasonGapUnhealable},
		{name: "bad sequence", src: full, version: 0, seq: 0, poison: ReasonUnappliable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := healer{src: tc.src, attempts: 3, backoff: time.Millisecond}
			events, healed, dup, err := h.plan(context.Background(), tc.version, envAt(tc.seq))
			reason, isPoison := IsPoison(err)
			switch {
			case tc.poison != "":
				if !isPoison || reason != tc.poison {
					t.Fatalf("err %v, want poison %s", err, tc.poison)
				}
				return
			case tc.transient:
				if err == nil || isPoison {
					t.Fatalf("err %v, want a transient error", err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if dup != tc.duplicate || healed != tc.healed {
				t.Fatalf("duplicate %v healed %d", dup, healed)
			}
			var seqs []int64
			for _, e := range events {
				seqs = append(seqs, e.Sequence)
			}
			if fmt.Sprint(seqs) != fmt.Sprint(tc.wantSeqs) {
				t.Fatalf("events %v, want %v", seqs, tc.wantSeqs)
			}
		})
	}
	if holey.calls != 3 {
		t.Errorf("a short read was tried %d times, want 3", holey.calls)
	}
}

// TestHealerPlanStream: a run of consecutive events (as a rebuild from the event store reads
// them) drops what the row already has, heals a gap before its first event, and refuses a run
// that is not dense or mixes aggregates.
func TestHealerPlanStream(t *testing.T) {
	h := healer{src: &sliceSource{events: []es.Envelope{envAt(1), envAt(2), envAt(3), envAt(4), envAt(5)}}, attempts: 1, backoff: time.Millisecond}
	other := envAt(4)
	other.AggregateID = "b"
	for _, tc := range []struct {
		name      string
		version   int64
		stream    []es.Envelope
		want      string
		healed    int
		duplicate bool
		poison    bool
	}{
		{name: "from nothing", version: 0, stream: []es.Envelope{envAt(1), envAt(2), envAt(3)}, want: "[1 2 3]"},
		{name: "partly applied", version: 2, stream: []es.Envelope{envAt(1), envAt(2), envAt(3), envAt(4)}, want: "[3 4]"},
		{name: "all applied", version: 4, stream: []es.Envelope{envAt(3), envAt(4)}, want: "[]", duplicate: true},
		{name: "gap before", version: 1, stream: []es.Envelope{envAt(4), envAt(5)}, want: "[2 3 4 5]", healed: 2},
		{name: "not dense", version: 0, stream: []es.Envelope{envAt(1), envAt(3)}, poison: true},
		{name: "two aggregates", version: 0, stream: []es.Envelope{envAt(3), other}, poison: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events, healed, dup, err := h.planStream(context.Background(), tc.version, tc.stream)
			if _, isPoison := IsPoison(err); isPoison != tc.poison || (err != nil && !tc.poison) {
				t.Fatalf("err %v, want poison %v", err, tc.poison)
			}
			if tc.poison {
				return
			}
			seqs := []int64{}
			for _, e := range events {
				seqs = append(seqs, e.Sequence)
			}
			if fmt.Sprint(seqs) != tc.want || healed != tc.healed || dup != tc.duplicate {
				t.Fatalf("events %v healed %d duplicate %v, want %s %d %v", seqs, healed, dup, tc.want, tc.healed, tc.duplicate)
			}
		})
	}
}

func TestApplyContact(t *testing.T) {
	c := readmodel.Contact{CustomerID: "c"}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	steps := []struct {
		ev        es.Event
		wantEmail string
		wantName  string
	}{
		{customer.CustomerRegistered{Email: "a@x.io", FirstName: "Ada", LastName: "L"}, "a@x.io", "Ada L"},
		{customer.CustomerTierUpgraded{NewTier: customer.TierGold}, "a@x.io", "Ada L"},
		{customer.CustomerProfileUpdated{FirstName: "Ada", LastName: "King"}, "a@x.io", "Ada King"},
		{customer.CustomerEmailChanged{NewEmail: "k@x.io"}, "k@x.io", "Ada King"},
		{customer.CustomerErased{}, "", ""}, // the orders keep the customer id only
	}
	for i, s := range steps {
		if err := applyContact(&c, es.Envelope{Sequence: int64(i + 1), Event: s.ev, OccurredAt: at}); err != nil {
			t.Fatal(err)
		}
		if c.Email != s.wantEmail || c.Name != s.wantName || c.Version != int64(i+1) {
			t.Fatalf("step %d: %+v", i, c)
		}
	}
	err := applyContact(&c, es.Envelope{Sequence: 5, Event: customer.CustomerRegistered{}})
	if r, ok := IsPoison(err); !ok || r != ReasonUnappliable {
		t.Fatalf("second registration: %v", err)
	}
	err = applyContact(&readmodel.Contact{}, es.Envelope{Sequence: 1, Event: customer.CustomerSuspended{}})
	if _, ok := IsPoison(err); !ok {
		t.Fatalf("first event not a registration: %v", err)
	}
	if !errors.Is(Poison("x", es.ErrNotFound), es.ErrNotFound) {
		t.Fatal("PoisonError does not unwrap")
	}
}

// TestGroupIDAndTopics: the consumer group and the topics of a projection version (the
// dead-letter topic's name is tested with the dead-letter writer, internal/consumer).
func TestGroupIDAndTopics(t *testing.T) {
	if got := GroupID("ordersys-projector", "orders", 3); got != "ordersys-projector.orders.v3" {
		t.Fatal(got)
	}
	cfg := Config{}
	if got := cfg.Topics(readmodel.ProjectionOrders); fmt.Sprint(got) != "[order-events customer-events]" {
		t.Fatal(got)
	}
	if got := cfg.Topics(readmodel.ProjectionCustomers); fmt.Sprint(got) != "[customer-events]" {
		t.Fatal(got)
	}
}
