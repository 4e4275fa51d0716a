package cql_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
)

// The fault-injection test runs a writer as a child process (this test binary, re-executed with
// ORDERSYS_FAULT_CHILD set) that kills itself with SIGKILL at one step of the append protocol.

const (
	envChild    = "ORDERSYS_FAULT_CHILD"
	envKeyspace = "ORDERSYS_FAULT_KEYSPACE"
	envAgg      = "ORDERSYS_FAULT_AGGREGATE"
	envExpected = "ORDERSYS_FAULT_EXPECTED"
	envKillAt   = "ORDERSYS_FAULT_KILL_AT"
	envEventIDs = "ORDERSYS_FAULT_EVENT_IDS"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		os.Exit(faultChild())
	}
	os.Exit(m.Run())
}

// faultEvents returns the events a writer at version expected appends (two per append).
func faultEvents(id string, expected int64) []es.Event {
	its := []order.Item{{ProductID: "7d444840-9dc0-11d1-b245-5ffdce74fad2", Quantity: int32(expected + 1), UnitPriceCents: 250}}
	total, _ := order.Total(its)
	if expected == 0 {
		return []es.Event{order.OrderCreated{OrderID: id, CustomerID: "1b4e28ba-2fa1-11d2-883f-0016d3cca427", Items: its, TotalCents: total},
			order.OrderItemsUpdated{Items: its, TotalCents: total, Reason: "first touch"}}
	}
	return []es.Event{order.OrderItemsUpdated{Items: its, TotalCents: total, Reason: fmt.Sprintf("from %d", expected)},
		order.OrderItemsUpdated{Items: its, TotalCents: total, Reason: fmt.Sprintf("again from %d", expected)}}
}

func faultRequest(id string, expected int64, ids []string) es.AppendRequest {
	a := order.New(id)
	a.SetVersion(expected)
	i := 0
	envs := es.NewEnvelopes(a, faultEvents(id, expected), es.Metadata{CausationID: "cmd-" + ids[0], CorrelationID: "fault"},
		time.Now(), func() string { i++; return ids[i-1] })
	return es.AppendRequest{AggregateID: id, AggregateType: order.AggregateType, ExpectedVersion: expected, Events: envs,
		CommandID: "cmd-" + ids[0], CommandFingerprint: "fp"}
}

func faultChild() int {
	expected, _ := strconv.ParseInt(os.Getenv(envExpected), 10, 64)
	killAt := cql.Step(os.Getenv(envKillAt))
	s, err := cql.Connect(cqltest.SessionConfig(os.Getenv(envKeyspace)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: connect:", err)
		return 2
	}
	st := cql.NewEventStore(s, codec.NewRegistry(), cql.Options{Hook: func(step cql.Step) {
		if step == killAt {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Hour)
		}
	}})
	ids := strings.Split(os.Getenv(envEventIDs), ",")
	if _, err := st.Append(context.Background(), faultRequest(os.Getenv(envAgg), expected, ids)); err != nil {
		fmt.Fprintln(os.Stderr, "child: append:", err)
		return 3
	}
	// The outbox rows and the intent's deletion follow the answer: the child dies at those steps
	// while it waits for them, as a service does while it drains on shutdown.
	if err := st.Close(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "child: close:", err)
		return 4
	}
	return 0
}

// runChild runs one writer that dies at killAt ("" = never) and reports whether it was killed.
func runChild(t *testing.T, ks, id string, expected int64, killAt cql.Step, ids []string) bool {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", envKeyspace+"="+ks, envAgg+"="+id,
		envExpected+"="+strconv.FormatInt(expected, 10), envKillAt+"="+string(killAt), envEventIDs+"="+strings.Join(ids, ","))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	if err != nil {
		t.Fatalf("child writer (kill at %q): %v\n%s", killAt, err, out)
	}
	return false
}

type eventKey struct {
	agg string
	seq int64
}

func scan(t *testing.T, s *gocql.Session, stmt string) map[eventKey]string {
	t.Helper()
	out := map[eventKey]string{}
	iter := s.Query(stmt).Iter()
	var agg, ev gocql.UUID
	var seq int64
	for iter.Scan(&agg, &seq, &ev) {
		k := eventKey{agg.String(), seq}
		if prev, dup := out[k]; dup && prev != ev.String() {
			t.Errorf("%s: two different events at %v: %s and %s", stmt, k, prev, ev)
		}
		out[k] = ev.String()
	}
	if err := iter.Close(); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
	return out
}

// checkNoLossNoPhantom asserts (a) every committed event has an outbox row, (b) every outbox
// row is a committed event, and that no intent is left.
func checkNoLossNoPhantom(t *testing.T, s *gocql.Session) (events map[eventKey]string) {
	t.Helper()
	events = scan(t, s, `SELECT aggregate_id, sequence, event_id FROM event_store`)
	outbox := scan(t, s, `SELECT aggregate_id, sequence, event_id FROM outbox_messages`)
	for k, id := range events {
		if outbox[k] != id {
			t.Errorf("(a) lost: committed event %s at %v has no outbox row", id, k)
		}
	}
	for k, id := range outbox {
		if events[k] != id {
			t.Errorf("(b) phantom: outbox row for event %s at %v, event store holds %q", id, k, events[k])
		}
	}
	var n int
	if err := s.Query(`SELECT count(*) FROM pending_appends`).Scan(&n); err != nil || n != 0 {
		t.Errorf("intents left after recovery: %d (%v)", n, err)
	}
	return events
}

func newIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = uuid.NewString()
	}
	return out
}

func TestOutboxProtocolSurvivesWriterDeathAtEveryStep(t *testing.T) {
	s, ks := cqltest.Keyspace(t)
	st := cql.NewEventStore(s, codec.NewRegistry(), cql.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	steps := []cql.Step{cql.StepIntentWritten, cql.StepCommitted, cql.StepOutboxBuilt, cql.StepOutboxWritten, cql.StepIntentSettled, ""}
	for _, creating := range []bool{true, false} {
		for _, step := range steps {
			name := fmt.Sprintf("create=%v/kill-at=%s", creating, step)
			t.Run(name, func(t *testing.T) {
				id := uuid.NewString()
				var expected int64
				if !creating {
					// an aggregate at version 2, written by this (healthy) process
					res, err := st.Append(ctx, faultRequest(id, 0, newIDs(2)))
					if err != nil {
						t.Fatal(err)
					}
					expected = res.Version
				}
				ids := newIDs(2)
				killed := runChild(t, ks, id, expected, step, ids)
				if killed != (step != "") {
					t.Fatalf("child killed=%v at step %q", killed, step)
				}
				drain(ctx, t, st)
				if _, err := st.RecoverIntents(ctx, 0); err != nil {
					t.Fatal(err)
				}
				events := checkNoLossNoPhantom(t, s)
				// Nobody competed, so the child's append is committed whatever step it died at:
				// before the commit, recovery rolled it forward.
				for i, ev := range ids {
					k := eventKey{id, expected + int64(i) + 1}
					if events[k] != ev {
						t.Errorf("event %d of the child's append: store holds %q at %v, want %s", i, events[k], k, ev)
					}
				}
				if h, err := st.Head(ctx, id); err != nil || h.Version != expected+2 || h.Commands["cmd-"+ids[0]].LastSequence != expected+2 {
					t.Errorf("head after recovery: %+v %v", h, err)
				}
			})
		}
	}

	// A writer that dies after its intent, then loses its sequences to another writer, must leave
	// no trace in the outbox: recovery cannot commit it and discards it.
	t.Run("dead-writer-loses-race", func(t *testing.T) {
		id := uuid.NewString()
		if _, err := st.Append(ctx, faultRequest(id, 0, newIDs(2))); err != nil {
			t.Fatal(err)
		}
		loser := newIDs(2)
		if !runChild(t, ks, id, 2, cql.StepIntentWritten, loser) {
			t.Fatal("child was not killed")
		}
		winner := newIDs(2)
		if _, err := st.Append(ctx, faultRequest(id, 2, winner)); err != nil {
			t.Fatal(err)
		}
		drain(ctx, t, st)
		stats, err := st.RecoverIntents(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if stats.Discarded < 1 {
			t.Errorf("recovery discarded %d intents, want the loser's: %+v", stats.Discarded, stats)
		}
		events := checkNoLossNoPhantom(t, s)
		if events[eventKey{id, 3}] != winner[0] || events[eventKey{id, 4}] != winner[1] {
			t.Errorf("winner's events not at 3, 4: %q %q", events[eventKey{id, 3}], events[eventKey{id, 4}])
		}
	})

	// A live writer that lost the race gets a conflict and leaves nothing behind.
	t.Run("live-writer-loses-race", func(t *testing.T) {
		id := uuid.NewString()
		if _, err := st.Append(ctx, faultRequest(id, 0, newIDs(2))); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Append(ctx, faultRequest(id, 2, newIDs(2))); err != nil {
			t.Fatal(err)
		}
		_, err := st.Append(ctx, faultRequest(id, 2, newIDs(2)))
		var ce *es.ConflictError
		if !errors.As(err, &ce) || ce.Actual != 4 {
			t.Fatalf("stale writer: %v", err)
		}
		drain(ctx, t, st)
		checkNoLossNoPhantom(t, s)
	})
}

// drain waits until the store's appends have written their outbox rows and deleted their intents
// (they do so after Append returns): the checks read what a settled store holds.
func drain(ctx context.Context, t *testing.T, st *cql.EventStore) {
	t.Helper()
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
