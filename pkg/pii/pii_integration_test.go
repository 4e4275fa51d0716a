package pii_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
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

func kek(t *testing.T) []byte {
	t.Helper()
	b, err := pii.GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parse(t *testing.T, b []byte) *pii.KEK {
	t.Helper()
	k, err := pii.ParseKEK(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestDataKeysCreateOnceAndErase: concurrent creators agree on one key; a store without the
// cache reads the same key; erasure deletes it (no key is ever made again, readers get
// ErrErased); a customer without key reads ErrNoKey.
func TestDataKeysCreateOnceAndErase(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k := parse(t, kek(t))
	id := ids.New()
	ad := []byte("ad")

	cts := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range cts {
		wg.Go(func() {
			st := pii.NewStore(s, k, pii.Options{CacheTTL: -1})
			a, err := st.DataKey(ctx, id, true)
			if err != nil {
				t.Error(err)
				return
			}
			cts[i], _ = a.Encrypt([]byte("jane@example.com"), ad)
		})
	}
	wg.Wait()
	reader := pii.NewStore(s, k, pii.Options{CacheTTL: -1})
	a, err := reader.DataKey(ctx, id, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, ct := range cts {
		if pt, err := a.Decrypt(ct, ad); err != nil || string(pt) != "jane@example.com" {
			t.Fatalf("creator %d used another key: %v", i, err)
		}
	}
	if _, err := a.Decrypt(cts[0], []byte("other customer")); err == nil {
		t.Fatal("decrypted with other associated data")
	}
	if _, err := reader.DataKey(ctx, ids.New(), false); !errors.Is(err, codec.ErrNoKey) {
		t.Fatalf("unknown customer: %v, want ErrNoKey", err)
	}

	// A snapshot written in clear (before encryption) goes with the key.
	if err := s.Query(`INSERT INTO snapshots (aggregate_id, version, aggregate_type, schema_version, state) VALUES (?, 1, 'Customer', 1, ?)`,
		id, []byte("jane@example.com")).Exec(); err != nil {
		t.Fatal(err)
	}
	writer := pii.NewStore(s, k, pii.Options{})
	if err := writer.Erase(ctx, id); err != nil {
		t.Fatal(err)
	}
	var snapshots int
	if err := s.Query(`SELECT COUNT(*) FROM snapshots WHERE aggregate_id = ?`, id).Scan(&snapshots); err != nil || snapshots != 0 {
		t.Fatalf("%d snapshots left after erasure, %v", snapshots, err)
	}
	if err := writer.Erase(ctx, id); err != nil {
		t.Fatalf("second erase: %v", err)
	}
	for _, create := range []bool{false, true} {
		if _, err := reader.DataKey(ctx, id, create); !errors.Is(err, codec.ErrErased) {
			t.Fatalf("after erase (create=%v): %v, want ErrErased", create, err)
		}
	}
	var keyset []byte
	if err := s.Query(`SELECT keyset FROM customer_keys WHERE customer_id = ?`, id).Scan(&keyset); err != nil || keyset != nil {
		t.Fatalf("keyset left after erase: %d bytes, %v", len(keyset), err)
	}
	// A customer erased before it had a key never gets one.
	other := ids.New()
	if err := writer.Erase(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := reader.DataKey(ctx, other, true); !errors.Is(err, codec.ErrErased) {
		t.Fatalf("key made for an erased customer: %v", err)
	}
}

// TestKEKRotation: after RotateKEK, data keys wrapped by the old KEK key still open; Rewrap
// re-wraps every one with the new primary; then the keyset without the old key opens them all,
// and the old KEK alone opens none.
func TestKEKRotation(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	oldJSON := kek(t)
	old := parse(t, oldJSON)
	st := pii.NewStore(s, old, pii.Options{CacheTTL: -1})
	customers := []string{ids.New(), ids.New(), ids.New()}
	cts := map[string][]byte{}
	for _, id := range customers {
		a, err := st.DataKey(ctx, id, true)
		if err != nil {
			t.Fatal(err)
		}
		cts[id], _ = a.Encrypt([]byte("secret of "+id), []byte(id))
	}
	erased := ids.New()
	if _, err := st.DataKey(ctx, erased, true); err != nil {
		t.Fatal(err)
	}
	if err := st.Erase(ctx, erased); err != nil {
		t.Fatal(err)
	}

	rotatedJSON, err := pii.RotateKEK(oldJSON)
	if err != nil {
		t.Fatal(err)
	}
	rotated := parse(t, rotatedJSON)
	if rotated.PrimaryKeyID() == old.PrimaryKeyID() {
		t.Fatal("rotation kept the primary")
	}
	rs := pii.NewStore(s, rotated, pii.Options{CacheTTL: -1})
	open := func(st *pii.Store) error {
		for _, id := range customers {
			a, err := st.DataKey(ctx, id, false)
			if err != nil {
				return err
			}
			if pt, err := a.Decrypt(cts[id], []byte(id)); err != nil || !bytes.Equal(pt, []byte("secret of "+id)) {
				return errors.New("wrong key")
			}
		}
		return nil
	}
	if err := open(rs); err != nil {
		t.Fatalf("rotated keyset before re-wrap: %v", err)
	}
	n, err := rs.Rewrap(ctx)
	if err != nil || n != len(customers) {
		t.Fatalf("re-wrapped %d, %v; want %d", n, err, len(customers))
	}
	if n, err := rs.Rewrap(ctx); err != nil || n != 0 {
		t.Fatalf("second re-wrap: %d, %v", n, err)
	}
	newOnlyJSON, err := pii.DropOldKEKKeys(rotatedJSON)
	if err != nil {
		t.Fatal(err)
	}
	if err := open(pii.NewStore(s, parse(t, newOnlyJSON), pii.Options{CacheTTL: -1})); err != nil {
		t.Fatalf("new KEK alone after re-wrap: %v", err)
	}
	if err := open(pii.NewStore(s, old, pii.Options{CacheTTL: -1})); err == nil {
		t.Fatal("the old KEK still opens re-wrapped keys")
	}
	if _, err := rs.DataKey(ctx, erased, false); !errors.Is(err, codec.ErrErased) {
		t.Fatalf("re-wrap resurrected an erased key: %v", err)
	}
}

// TestSealedEventsInTheEventStore: through the real event store with a sealing registry, the
// stored payloads hold no personal data in clear; a registry with the keys loads them in clear;
// one without keys loads no personal data; after erasure they load with erased markers, and a
// customer written in clear before encryption loads in clear, then erased after erasure.
func TestSealedEventsInTheEventStore(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k := parse(t, kek(t))
	keys := pii.NewStore(s, k, pii.Options{})
	sealing := codec.NewRegistry()
	sealing.SetSealer(codec.PIISealer{Keys: keys})
	store := cql.NewEventStore(s, sealing, cql.Options{})
	plainStore := cql.NewEventStore(s, codec.NewRegistry(), cql.Options{})
	defer store.Close(ctx)
	defer plainStore.Close(ctx)

	appendAll := func(st *cql.EventStore, id string, evs ...es.Event) {
		t.Helper()
		c := customer.New(id)
		envs := es.NewEnvelopes(c, evs, es.Metadata{CausationID: ids.New()}, time.Now(), ids.New)
		if _, err := st.Append(ctx, es.AppendRequest{AggregateID: id, AggregateType: customer.AggregateType, ExpectedVersion: 0, Events: envs}); err != nil {
			t.Fatal(err)
		}
	}
	personal := []string{"jane.sealed@example.com", "Janeway", "Doemann", "+4915112345678", "Unter den Linden 77", "10117"}
	sealedID, legacyID := ids.New(), ids.New()
	events := func(id string) []es.Event {
		return []es.Event{
			customer.CustomerRegistered{CustomerID: id, Email: customer.Email(personal[0]), FirstName: personal[1], LastName: personal[2], Phone: customer.PhoneNumber(personal[3]), Tier: customer.TierBronze},
			customer.CustomerAddressAdded{Address: customer.Address{AddressID: ids.New(), Line1: personal[4], City: "Berlin", PostalCode: personal[5], CountryCode: "DE", IsDefault: true}},
			customer.CustomerEmailChanged{OldEmail: customer.Email(personal[0]), NewEmail: "new." + customer.Email(personal[0])},
		}
	}
	appendAll(store, sealedID, events(sealedID)...)
	appendAll(plainStore, legacyID, events(legacyID)...)

	raw, err := store.LoadRaw(ctx, sealedID, 1, 10)
	if err != nil || len(raw) != 3 {
		t.Fatalf("load raw: %d, %v", len(raw), err)
	}
	for _, env := range raw {
		for _, p := range personal {
			if bytes.Contains(env.Payload, []byte(p)) {
				t.Fatalf("%s stored %q in clear", env, p)
			}
		}
	}
	load := func(st *cql.EventStore, id string) *customer.Customer {
		t.Helper()
		c := customer.New(id)
		envs, err := st.LoadRange(ctx, id, 1, 10)
		if err != nil {
			t.Fatal(err)
		}
		if err := es.Replay(c, envs); err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, id := range []string{sealedID, legacyID} {
		c := load(store, id)
		if c.Email != "new."+customer.Email(personal[0]) || c.FirstName != personal[1] || c.Phone != customer.PhoneNumber(personal[3]) || c.Addresses[0].Line1 != personal[4] {
			t.Fatalf("%s loaded %+v", id, c)
		}
	}
	if c := load(plainStore, sealedID); c.Email != "" || c.FirstName != "" || c.Addresses[0].Line1 != "" || c.Addresses[0].AddressID == "" {
		t.Fatalf("a reader without keys saw %+v", c)
	}

	// Another process that read the legacy customer (and cached that it has no key) still opens
	// the customer's first sealed event, written after that.
	readerReg := codec.NewRegistry()
	readerReg.SetSealer(codec.PIISealer{Keys: pii.NewStore(s, k, pii.Options{})})
	reader := cql.NewEventStore(s, readerReg, cql.Options{})
	defer reader.Close(ctx)
	load(reader, legacyID)
	c := load(store, legacyID)
	next := es.NewEnvelopes(c, []es.Event{customer.CustomerEmailChanged{OldEmail: c.Email, NewEmail: "later." + c.Email}}, es.Metadata{CausationID: ids.New()}, time.Now(), ids.New)
	if _, err := store.Append(ctx, es.AppendRequest{AggregateID: legacyID, AggregateType: customer.AggregateType, ExpectedVersion: c.Version(), Events: next}); err != nil {
		t.Fatal(err)
	}
	if got := load(reader, legacyID); got.Email != "later."+c.Email {
		t.Fatalf("reader with a cached absence of key loaded %+v", got)
	}

	for _, id := range []string{sealedID, legacyID} {
		if err := keys.Erase(ctx, id); err != nil {
			t.Fatal(err)
		}
		c := load(store, id)
		if c.Email != codec.ErasedMarker || c.FirstName != codec.ErasedMarker || c.Phone != codec.ErasedMarker ||
			c.Addresses[0].Line1 != codec.ErasedMarker || c.Addresses[0].PostalCode != codec.ErasedMarker || c.Tier != customer.TierBronze {
			t.Fatalf("%s after erasure loaded %+v", id, c)
		}
	}
}
