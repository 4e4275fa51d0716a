package es_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/es"
)

// counter is a toy aggregate for the core's own tests.
type counter struct {
	es.Root
	total int
}

type added struct{ N int }

func (added) EventType() string { return "Added" }

func (c *counter) AggregateType() string { return "Counter" }
func (c *counter) Apply(e es.Event, _ time.Time) error {
	a, ok := e.(added)
	if !ok {
		return errors.New("unexpected event")
	}
	c.total += a.N
	return nil
}

func envs(t *testing.T, c *counter, ns ...int) []es.Envelope {
	t.Helper()
	var evs []es.Event
	for _, n := range ns {
		evs = append(evs, added{n})
	}
	i := 0
	return es.NewEnvelopes(c, evs, es.Metadata{CausationID: "cmd", CorrelationID: "corr", Extra: map[string]string{"k": "v"}},
		time.Unix(100, 0), func() string { i++; return string(rune('a' + i)) })
}

func TestReplayDenseSequences(t *testing.T) {
	c := &counter{Root: es.NewRoot("c1")}
	batch := envs(t, c, 1, 2, 3)
	for i, e := range batch {
		if e.Sequence != int64(i+1) || e.AggregateType != "Counter" || e.CausationID != "cmd" || e.Metadata["k"] != "v" {
			t.Fatalf("envelope %d: %+v", i, e)
		}
	}
	if err := es.Replay(c, batch); err != nil {
		t.Fatal(err)
	}
	if c.Version() != 3 || c.total != 6 {
		t.Fatalf("version %d total %d", c.Version(), c.total)
	}
	// a repeat and a gap are both refused
	if err := es.ApplyEnvelope(c, batch[2]); !errors.Is(err, es.ErrSequenceGap) {
		t.Fatalf("repeat: %v", err)
	}
	gap := batch[0]
	gap.Sequence = 5
	if err := es.ApplyEnvelope(c, gap); !errors.Is(err, es.ErrSequenceGap) {
		t.Fatalf("gap: %v", err)
	}
	other := batch[0]
	other.AggregateID, other.Sequence = "c2", 4
	if err := es.ApplyEnvelope(c, other); err == nil {
		t.Fatal("event of another aggregate applied")
	}
}

type addedV2 struct {
	N    int    `json:"n"`
	Note string `json:"note"`
}

func (addedV2) EventType() string { return "Added" }

func TestRegistryUpcastsOldSchema(t *testing.T) {
	r := es.NewRegistry()
	r.Register("Added", es.EventCodec{
		AggregateType: "Counter", SchemaVersion: 2,
		Encode: func(e es.Event) ([]byte, error) { return json.Marshal(e) },
		Decode: func(b []byte) (es.Event, error) { var v addedV2; err := json.Unmarshal(b, &v); return v, err },
	})
	// v1 stored {"count": n}; v2 renamed it to n and added a note.
	r.RegisterUpcaster("Added", 1, func(b []byte) ([]byte, error) {
		var v1 struct{ Count int }
		if err := json.Unmarshal(b, &v1); err != nil {
			return nil, err
		}
		return json.Marshal(addedV2{N: v1.Count, Note: "from v1"})
	})
	ev, err := r.Decode("Added", 1, []byte(`{"Count":7}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.(addedV2); got.N != 7 || got.Note != "from v1" {
		t.Fatalf("upcast: %+v", got)
	}
	b, v, err := r.Encode(addedV2{N: 3})
	if err != nil || v != 2 {
		t.Fatalf("encode: %v v%d", err, v)
	}
	if ev, err = r.Decode("Added", 2, b); err != nil || ev.(addedV2).N != 3 {
		t.Fatalf("roundtrip: %v %+v", err, ev)
	}
	for _, tc := range []struct {
		typ string
		v   int32
	}{{"Nope", 1}, {"Added", 3}, {"Added", 0}} {
		if _, err := r.Decode(tc.typ, tc.v, b); !errors.Is(err, es.ErrUnknownEventType) {
			t.Errorf("decode %s v%d: %v", tc.typ, tc.v, err)
		}
	}
	if at, _ := r.AggregateTypeOf("Added"); at != "Counter" {
		t.Fatalf("aggregate type %q", at)
	}
}

func TestErrorsMatchSentinels(t *testing.T) {
	var v es.Violations
	v.Add("items[0].quantity", "must be greater than 0")
	v.Merge("address", es.Invalid("country_code", "must be two letters"))
	err := v.Err()
	if !errors.Is(err, es.ErrInvalidArgument) || len(err.(*es.ValidationError).Violations) != 2 {
		t.Fatalf("validation: %v", err)
	}
	if got := err.(*es.ValidationError).Violations[1].Field; got != "address.country_code" {
		t.Fatalf("merged field %q", got)
	}
	if (es.Violations{}).Err() != nil {
		t.Fatal("empty violations are an error")
	}
	if !errors.Is(es.Rule("r", "no %s", "way"), es.ErrRuleViolation) {
		t.Fatal("rule")
	}
	if !errors.Is(&es.ConflictError{AggregateID: "a", Expected: 1, Actual: 2}, es.ErrConcurrencyConflict) {
		t.Fatal("conflict")
	}
}

func TestSnapshotDue(t *testing.T) {
	cases := []struct {
		before, after int64
		every         int
		want          bool
	}{{98, 99, 100, false}, {99, 100, 100, true}, {99, 101, 100, true}, {100, 101, 100, false}, {5, 500, 0, false}}
	for _, c := range cases {
		if got := es.SnapshotDue(c.before, c.after, c.every); got != c.want {
			t.Errorf("SnapshotDue(%d,%d,%d)=%v", c.before, c.after, c.every, got)
		}
	}
}

func TestViolationsAreBounded(t *testing.T) {
	var v es.Violations
	for i := range 1000 {
		v.Addf(fmt.Sprintf("items[%d].quantity", i), "must be greater than 0")
	}
	var ve *es.ValidationError
	if !errors.As(v.Err(), &ve) || len(ve.Violations) != es.MaxReportedViolations || ve.Omitted != 1000-es.MaxReportedViolations {
		t.Fatalf("got %d violations, %d omitted", len(ve.Violations), ve.Omitted)
	}
	if !strings.HasSuffix(ve.Error(), fmt.Sprintf("and %d more", 1000-es.MaxReportedViolations)) {
		t.Fatalf("message %q does not count the rest", ve.Error())
	}
}

// TestCommandsToForgetDropsRejectionsFirst: rejections (also kept in a table a read finds)
// are forgotten before successes, whatever their age.
func TestCommandsToForgetDropsRejectionsFirst(t *testing.T) {
	commands := map[string]es.CommandRecord{
		"old-success": {Fingerprint: "a", FirstSequence: 1, LastSequence: 1},
		"new-reject":  {Fingerprint: "b", FirstSequence: 5, LastSequence: 5, Rejected: true},
		"new-success": {Fingerprint: "c", FirstSequence: 6, LastSequence: 6},
	}
	if got := es.CommandsToForget(commands, 3); len(got) != 1 || got[0] != "new-reject" {
		t.Fatalf("forget %v, want [new-reject]", got)
	}
	if got := es.CommandsToForget(commands, 2); len(got) != 2 || got[0] != "new-reject" || got[1] != "old-success" {
		t.Fatalf("forget %v, want [new-reject old-success]", got)
	}
}
