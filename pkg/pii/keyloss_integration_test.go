package pii_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/pii"
)

// TestLostKeyIsIsolatedAndLoud: customer B's customer_keys row deleted (a lost key, not an
// erasure), customer A's sealed events still open to the original plaintext through a process
// with nothing cached. B's events do not open as erased: they fail with codec.ErrKeyLost naming
// B; no new key is made for B (DataKey with create, and an append of a sealed event, fail and
// leave no row), and B does not count as erased. B's row put back (as a restore from a backup
// would) opens B's events again; an erased customer (C) still reads as erased, without error.
func TestLostKeyIsIsolatedAndLoud(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k := parse(t, kek(t))
	// open returns an event store whose key store caches nothing: every step reads the table,
	// as another process would.
	open := func() (*cql.EventStore, *pii.Store) {
		keys := pii.NewStore(s, k, pii.Options{CacheTTL: -1})
		reg := codec.NewRegistry()
		reg.SetSealer(codec.PIISealer{Keys: keys})
		st := cql.NewEventStore(s, reg, cql.Options{})
		t.Cleanup(func() { _ = st.Close(context.Background()) })
		return st, keys
	}
	store, keys := open()
	a, b, c := ids.New(), ids.New(), ids.New()
	email := func(id string) customer.Email { return customer.Email("key." + id[:8] + "@example.com") }
	for _, id := range []string{a, b, c} {
		evs := []es.Event{
			customer.CustomerRegistered{CustomerID: id, Email: email(id), FirstName: "First" + id[:8], LastName: "Last", Tier: customer.TierBronze},
			customer.CustomerAddressAdded{Address: customer.Address{AddressID: ids.New(), Line1: "Street " + id[:8], City: "Berlin", PostalCode: "10117", CountryCode: "DE", IsDefault: true}},
		}
		envs := es.NewEnvelopes(customer.New(id), evs, es.Metadata{CausationID: ids.New()}, time.Now(), ids.New)
		if _, err := store.Append(ctx, es.AppendRequest{AggregateID: id, AggregateType: customer.AggregateType, Events: envs}); err != nil {
			t.Fatal(err)
		}
	}
	load := func(st *cql.EventStore, id string) (*customer.Customer, error) {
		envs, err := st.LoadRange(ctx, id, 1, 10)
		if err != nil {
			return nil, err
		}
		cu := customer.New(id)
		return cu, es.Replay(cu, envs)
	}
	wantPlain := func(st *cql.EventStore, id string) {
		t.Helper()
		cu, err := load(st, id)
		if err != nil || cu.Email != email(id) || cu.FirstName != "First"+id[:8] || cu.Addresses[0].Line1 != "Street "+id[:8] {
			t.Fatalf("customer %s loaded %+v, %v; want its personal data in clear", id, cu, err)
		}
	}

	var (
		wrapped []byte
		kekID   int64
		created time.Time
	)
	if err := s.Query(`SELECT keyset, kek_key_id, created_at FROM customer_keys WHERE customer_id = ?`, b).Scan(&wrapped, &kekID, &created); err != nil {
		t.Fatal(err)
	}
	if err := s.Query(`DELETE FROM customer_keys WHERE customer_id = ?`, b).Exec(); err != nil {
		t.Fatal(err)
	}
	if err := keys.Erase(ctx, c); err != nil {
		t.Fatal(err)
	}

	fresh, freshKeys := open()
	wantPlain(fresh, a)
	if cu, err := load(fresh, b); !errors.Is(err, codec.ErrKeyLost) || errors.Is(err, codec.ErrErased) || !strings.Contains(err.Error(), b) {
		t.Fatalf("customer B with its key row gone: %+v, %v; want codec.ErrKeyLost naming %s", cu, err, b)
	}
	if _, err := freshKeys.DataKey(ctx, b, true); !errors.Is(err, codec.ErrKeyLost) || !strings.Contains(err.Error(), b) {
		t.Fatalf("DataKey(create) for B: %v, want codec.ErrKeyLost naming %s", err, b)
	}
	next := es.NewEnvelopes(customer.New(b), []es.Event{customer.CustomerEmailChanged{OldEmail: email(b), NewEmail: "new." + email(b)}},
		es.Metadata{CausationID: ids.New()}, time.Now(), ids.New)
	next[0].Sequence = 3
	if _, err := fresh.Append(ctx, es.AppendRequest{AggregateID: b, AggregateType: customer.AggregateType, ExpectedVersion: 2, Events: next}); !errors.Is(err, codec.ErrKeyLost) {
		t.Fatalf("append of a sealed event for B: %v, want codec.ErrKeyLost", err)
	}
	if head, err := fresh.Head(ctx, b); err != nil || head.Version != 2 {
		t.Fatalf("B's head after the refused append: %+v, %v", head, err)
	}
	var rows int
	if err := s.Query(`SELECT COUNT(*) FROM customer_keys WHERE customer_id = ?`, b).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("%d key rows of B, %v: a new key was made", rows, err)
	}
	if erased, err := freshKeys.Erased(ctx, b); err != nil || erased {
		t.Fatalf("B counts as erased: %v, %v", erased, err)
	}
	if cu, err := load(fresh, c); err != nil || cu.Email != codec.ErasedMarker || cu.Addresses[0].Line1 != codec.ErasedMarker {
		t.Fatalf("erased customer C: %+v, %v; want erased markers", cu, err)
	}

	if err := s.Query(`INSERT INTO customer_keys (customer_id, keyset, kek_key_id, created_at) VALUES (?, ?, ?, ?)`, b, wrapped, kekID, created).Exec(); err != nil {
		t.Fatal(err)
	}
	restored, _ := open()
	wantPlain(restored, b)
	wantPlain(restored, a)
}
