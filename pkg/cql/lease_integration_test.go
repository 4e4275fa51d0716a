package cql_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
)

func TestLeaseHasOneHolderAndExpires(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := cql.NewLease(s, "relay", "a", 2*time.Second)
	b := cql.NewLease(s, "relay", "b", 2*time.Second)
	if ok, err := a.TryAcquire(ctx); err != nil || !ok {
		t.Fatalf("a acquire: %v %v", ok, err)
	}
	if ok, err := b.TryAcquire(ctx); err != nil || ok {
		t.Fatalf("b acquired a held lease: %v %v", ok, err)
	}
	if ok, err := a.TryAcquire(ctx); err != nil || !ok {
		t.Fatalf("a re-acquire (renew): %v %v", ok, err)
	}
	if ok, err := b.Renew(ctx); err != nil || ok {
		t.Fatalf("b renewed a lease it does not hold: %v %v", ok, err)
	}
	// a stops renewing (dies): the TTL frees the lease for b
	start := time.Now()
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited > 6*time.Second {
		t.Errorf("takeover took %v", waited)
	}
	if ok, _ := a.Renew(ctx); ok {
		t.Fatal("a renewed after b took over")
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.TryAcquire(ctx); err != nil || !ok {
		t.Fatalf("a after release: %v %v", ok, err)
	}
}

func TestLeaseRunNeverHasTwoWorkers(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	var active, maxActive, runs atomic.Int32
	work := func(ctx context.Context) error {
		runs.Add(1)
		n := active.Add(1)
		for {
			if m := maxActive.Load(); n <= m || maxActive.CompareAndSwap(m, n) {
				break
			}
		}
		select { // hold for a while, then give the lease up so the other replica gets a turn
		case <-ctx.Done():
		case <-time.After(1500 * time.Millisecond):
		}
		active.Add(-1)
		return nil
	}
	done := make(chan struct{}, 2)
	for _, owner := range []string{"r1", "r2"} {
		l := cql.NewLease(s, "exclusive", owner, 2*time.Second)
		go func() { _ = l.Run(ctx, work); done <- struct{}{} }()
	}
	<-done
	<-done
	if maxActive.Load() != 1 {
		t.Fatalf("%d workers held the lease at once", maxActive.Load())
	}
	if runs.Load() < 2 {
		t.Fatalf("only %d turns in 8s: the lease was not handed over", runs.Load())
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	_, ks := cqltest.Keyspace(t) // already migrated once
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := cql.Migrate(ctx, cql.MigrateConfig{Session: cqltest.SessionConfig(ks), Profile: cql.ProfilePortable})
	if err != nil || v < 3 {
		t.Fatalf("second migrate: version %d, %v", v, err)
	}
	if _, err := cql.Migrate(ctx, cql.MigrateConfig{Session: cqltest.SessionConfig(ks), Profile: "oracle"}); err == nil {
		t.Fatal("unknown profile accepted")
	}
	if _, err := cql.Migrate(ctx, cql.MigrateConfig{Session: cqltest.SessionConfig("bad-name"), Profile: cql.ProfilePortable}); err == nil {
		t.Fatal("bad keyspace name accepted")
	}
}

// TestLeaseValidityEndsBeforeAnotherCanHoldIt: a holder that stops renewing (paused) knows, by
// its own clock, that its hold is over before the row's TTL lets another owner take the lease.
func TestLeaseValidityEndsBeforeAnotherCanHoldIt(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := cql.NewLease(s, "relay", "a", 2*time.Second)
	b := cql.NewLease(s, "relay", "b", 2*time.Second)
	if a.Valid() {
		t.Fatal("valid before any acquire")
	}
	sent := time.Now()
	if ok, err := a.TryAcquire(ctx); err != nil || !ok {
		t.Fatalf("a acquire: %v %v", ok, err)
	}
	if !a.Valid() || a.ValidUntil().After(sent.Add(2*time.Second)) {
		t.Fatalf("after acquire: valid %v until %v, sent %v", a.Valid(), a.ValidUntil(), sent)
	}
	if err := b.Wait(ctx); err != nil { // a does not renew: its row expires
		t.Fatal(err)
	}
	if a.Valid() {
		t.Fatalf("a still counts itself the holder at %v (until %v) while b holds the lease", time.Now(), a.ValidUntil())
	}
	if !b.Valid() {
		t.Fatal("b holds the lease but does not count itself valid")
	}
}
