package e2e_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/testinfra"
)

// Timing of the backup test: how long clients drive the system before the backup starts, and
// after it finished.
const (
	backupLoadBefore = 6 * time.Second
	backupLoadAfter  = 4 * time.Second
)

// TestBackupAndRestore runs the procedure of docs/recovery.md ("restore from backup") on a
// system under load: clients drive customers and orders while `migrate backup` copies the
// event store; then every service is stopped, the keyspace dropped and the topics deleted (the
// disaster), `migrate restore` writes the backup into a fresh keyspace, the services start,
// `ordersysctl republish` refills the topics from the restored store and `ordersysctl
// projector rebuild -source store` rebuilds both projections. Then:
//   - every event acknowledged before the backup started is back, at its sequence;
//   - each aggregate holds a prefix of what it held before the disaster (nothing invented), and
//     no event acknowledged after the backup finished (the recovery point, printed);
//   - the topics hold exactly the restored events, in sequence order per aggregate, and every
//     read model equals the state replayed from the restored store (checkChaos).
func TestBackupAndRestore(t *testing.T) {
	base := getSystem(t)
	s := &system{binDir: base.binDir}
	t.Cleanup(func() {
		if t.Failed() && s.procs != nil {
			s.dumpLogs(t, 30)
		}
		if unclean := s.stop(); len(unclean) > 0 {
			t.Errorf("backup system: not a clean stop on SIGTERM: %s", strings.Join(unclean, "; "))
		}
	})
	if err := s.start(); err != nil {
		t.Fatalf("start the system: %v\n%s", err, s.progress.String())
	}
	ctx := context.Background()

	// Load, and a backup in the middle of it.
	led := newLedger()
	stopLoad := drive(ctx, s, led)
	time.Sleep(backupLoadBefore)
	file := filepath.Join(s.runDir, "backup.jsonl")
	beforeBackup := led.copyEvents()
	started := time.Now()
	if err := s.migrate("backup", file); err != nil {
		stopLoad()
		t.Fatal(err)
	}
	finished := time.Now()
	time.Sleep(backupLoadAfter)
	stopLoad()
	t.Logf("backup taken in %s under load; %d commands acknowledged in all", finished.Sub(started).Round(time.Millisecond), led.acks)
	if len(beforeBackup) == 0 {
		t.Fatal("no command was acknowledged before the backup: the test would check nothing")
	}

	// The store as it was at the disaster.
	session, err := testinfra.Cluster(s.cqlHosts(), s.keyspace).CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	before, _ := storedEvents(t, session)
	session.Close()

	// The disaster, and the procedure of docs/recovery.md.
	var procs []*process
	for _, name := range s.instances() {
		procs = append(procs, s.procs[name])
	}
	if unclean := s.terminate(procs...); len(unclean) > 0 {
		t.Fatalf("services did not stop cleanly: %v", unclean)
	}
	s.dropKeyspace()
	s.deleteTopics()
	if err := s.migrate("restore", file); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"cdc-relay", "projector", "query", "command"} { // the relay creates the topics
		if err := s.launch(name); err != nil {
			t.Fatal(err)
		}
		if err := s.waitServing(name); err != nil {
			t.Fatal(err)
		}
	}
	if out, code := s.ctl(t, "republish", "-job", "restore"); code != 0 || !strings.Contains(out, "done") {
		t.Fatalf("republish: exit %d\n%s", code, out)
	}
	for _, projection := range []string{"orders", "customers"} {
		if out, code := s.ctl(t, "projector", "rebuild", "-source", "store", projection); code != 0 {
			t.Fatalf("projector rebuild -source store %s: exit %d\n%s", projection, code, out)
		}
	}

	// What came back.
	session, err = testinfra.Cluster(s.cqlHosts(), s.keyspace).CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	after, occurred := storedEvents(t, session)
	lost, lostAcked := 0, 0
	for agg, had := range before {
		got := after[agg]
		if !isPrefix(got, had) {
			t.Errorf("%s: restored %v is not a prefix of what the store held %v", agg, got, had)
		}
		lost += len(had) - len(got)
	}
	for agg := range after {
		if _, ok := before[agg]; !ok {
			t.Errorf("%s: restored, but the store never held it", agg)
		}
	}
	for agg, acked := range led.events {
		got := after[agg]
		if pre := beforeBackup[agg]; !isPrefix(pre, got) {
			t.Errorf("%s: acknowledged before the backup started %v, restored %v", agg, pre, got)
		}
		lostAcked += len(acked) - min(len(acked), len(got))
	}
	for agg, evs := range after {
		for i, id := range evs {
			if occurred[id].After(finished) {
				t.Errorf("%s sequence %d: restored, but it occurred at %s, after the backup finished", agg, i+1, occurred[id])
			}
		}
	}
	t.Logf("recovery point: the backup started %s and finished %s; %d events acknowledged before it started, all restored; %d events lost in all, %d of them acknowledged (all after the backup started)",
		started.Format(time.RFC3339Nano), finished.Format(time.RFC3339Nano), countEvents(beforeBackup), lost, lostAcked)

	// Topics and read models, as the chaos test checks them, against the restored store.
	restored := newLedger()
	for agg, evs := range after {
		restored.events[agg] = evs
	}
	for _, id := range led.orders {
		if len(after[id]) > 0 {
			restored.orders = append(restored.orders, id)
		}
	}
	checkChaos(t, s, restored)
}

// drive runs chaosClients clients against s, each driving customers and orders through their
// lives with command ids, until the returned function is called (it waits for them to finish).
func drive(ctx context.Context, s *system, led *ledger) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range chaosClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &chaosClient{s: s, led: led, rnd: rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))}
			for {
				select {
				case <-done:
					return
				default:
				}
				c.run(ctx, time.Now().Add(time.Second))
			}
		}()
	}
	return func() {
		close(done)
		wg.Wait()
	}
}

// copyEvents returns the acknowledged event ids per aggregate so far.
func (l *ledger) copyEvents() map[string][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string][]string, len(l.events))
	for agg, evs := range l.events {
		out[agg] = append([]string(nil), evs...)
	}
	return out
}

// storedEvents returns every aggregate's event ids in sequence order, and when each event
// occurred (the command service's clock, taken before the append).
func storedEvents(t *testing.T, session *gocql.Session) (map[string][]string, map[string]time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store := cql.NewEventStore(session, codec.NewRegistry(), cql.Options{})
	out, at := map[string][]string{}, map[string]time.Time{}
	err := store.WalkAggregates(ctx, "", 500, func(p cql.WalkPage) error {
		for _, agg := range p.IDs {
			head, err := store.Head(ctx, agg)
			if err != nil {
				return err
			}
			evs, err := store.LoadRaw(ctx, agg, 1, head.Version)
			if err != nil {
				return err
			}
			for _, e := range evs {
				out[agg] = append(out[agg], e.EventID)
				at[e.EventID] = e.OccurredAt
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, at
}

func isPrefix(short, long []string) bool {
	if len(short) > len(long) {
		return false
	}
	for i := range short {
		if short[i] != long[i] {
			return false
		}
	}
	return true
}

func countEvents(m map[string][]string) int {
	n := 0
	for _, evs := range m {
		n += len(evs)
	}
	return n
}
