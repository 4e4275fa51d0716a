package cql_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/testinfra"
)

// tombstoneWarnings counts the server's warnings about tombstones read by a session's queries.
type tombstoneWarnings struct {
	mu sync.Mutex
	n  int
}

func (w *tombstoneWarnings) HandleWarnings(_ gocql.ExecutableQuery, _ *gocql.HostInfo, warnings []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range warnings {
		if strings.Contains(m, "tombstone") {
			w.n++
		}
	}
}

func (w *tombstoneWarnings) take() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.n
	w.n = 0
	return n
}

// TestRecoveryDoesNotReadSettledIntentsAgain: every append writes an intent and deletes it, so
// a busy minute leaves thousands of tombstones in each pending_appends partition. Recovery read
// every open bucket whole on every pass (every 3 s), tombstones included: at a thousand
// commands a second, some 100,000 dead cells per pass, and the server's tombstone warning on
// every read. Now a pass reads an open bucket on from where the previous one stopped. The test
// leaves 1,200 deleted intents in one partition (the server warns from 1,000 on), runs one pass
// (it reads them: warned), then another, which must read none of them again (no warning).
func TestRecoveryDoesNotReadSettledIntentsAgain(t *testing.T) {
	s, ks := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// 1,200 intents of the last seconds, deleted as their writers delete them.
	now := time.Now()
	bucket := cql.Bucket(now)
	for i := 0; i < 1200; i += 100 {
		b := s.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
		for k := i; k < i+100; k++ {
			b.Query(`DELETE FROM pending_appends WHERE bucket = ? AND shard = 0 AND attempt_id = ?`, bucket,
				gocql.UUIDFromTime(now.Add(-time.Duration(k)*time.Millisecond)))
		}
		if err := s.ExecuteBatch(b); err != nil {
			t.Fatal(err)
		}
	}

	warned := &tombstoneWarnings{}
	cl := gocql.NewCluster(testinfra.CQLHosts()...)
	cl.Keyspace, cl.Consistency, cl.Timeout = ks, gocql.Quorum, 20*time.Second
	cl.WarningsHandlerBuilder = func(*gocql.Session) gocql.WarningHandler { return warned }
	ss, err := cl.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	sweeper := cql.NewEventStore(ss, codec.NewRegistry(), cql.Options{})

	if _, err := sweeper.RecoverIntents(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if n := warned.take(); n == 0 {
		t.Fatalf("the first pass read 1,200 tombstones without the server warning: the test proves nothing on this server")
	}
	if _, err := sweeper.RecoverIntents(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if n := warned.take(); n != 0 {
		t.Errorf("the second pass read the settled intents' tombstones again: %d tombstone warning(s)", n)
	}
}
