package reseal_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/pii"
	"github.com/ordersys/ordersys/pkg/pii/reseal"
)

// TestReseal: customers written in clear (before encryption) are migrated in place: a live
// customer's personal fields get sealed and load unchanged, an erased customer's get removed,
// orders are left alone, snapshots are deleted, and a second run finds nothing to do.
func TestReseal(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	keys, err := pii.Ephemeral(s, pii.Options{})
	if err != nil {
		t.Fatal(err)
	}
	plain := cql.NewEventStore(s, codec.NewRegistry(), cql.Options{})
	defer plain.Close(ctx)
	sealingReg := codec.NewRegistry()
	sealingReg.SetSealer(codec.PIISealer{Keys: keys})
	sealing := cql.NewEventStore(s, sealingReg, cql.Options{})
	defer sealing.Close(ctx)

	appendTo := func(a es.Aggregate, typ string, evs ...es.Event) {
		t.Helper()
		envs := es.NewEnvelopes(a, evs, es.Metadata{CausationID: ids.New()}, time.Now(), ids.New)
		if _, err := plain.Append(ctx, es.AppendRequest{AggregateID: a.AggregateID(), AggregateType: typ, Events: envs}); err != nil {
			t.Fatal(err)
		}
	}
	live, gone, ord := ids.New(), ids.New(), ids.New()
	for _, id := range []string{live, gone} {
		appendTo(customer.New(id), customer.AggregateType,
			customer.CustomerRegistered{CustomerID: id, Email: customer.Email("legacy-" + id[:8] + "@example.com"), FirstName: "Legacy", LastName: "Person", Tier: customer.TierBronze},
			customer.CustomerAddressAdded{Address: customer.Address{AddressID: ids.New(), Line1: "Old Road 1", City: "Oldtown", PostalCode: "12345", CountryCode: "DE", IsDefault: true}},
			customer.CustomerTierUpgraded{OldTier: customer.TierBronze, NewTier: customer.TierGold})
	}
	appendTo(order.New(ord), order.AggregateType, order.OrderCreated{OrderID: ord, CustomerID: live,
		Items: []order.Item{{ProductID: ids.New(), Quantity: 1, UnitPriceCents: 100}}, TotalCents: 100})
	if err := s.Query(`INSERT INTO snapshots (aggregate_id, version, aggregate_type, schema_version, state) VALUES (?, 1, 'Customer', 1, ?)`,
		live, []byte("legacy snapshot in clear")).Exec(); err != nil {
		t.Fatal(err)
	}
	if err := keys.Erase(ctx, gone); err != nil {
		t.Fatal(err)
	}
	before := customer.New(live)
	if envs, err := plain.LoadRange(ctx, live, 1, 10); err != nil || es.Replay(before, envs) != nil {
		t.Fatalf("load before: %v", err)
	}
	orderBefore, err := plain.LoadRaw(ctx, ord, 1, 10)
	if err != nil {
		t.Fatal(err)
	}

	res, err := reseal.Run(ctx, s, plain, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Customers < 2 || res.Sealed != 2 || res.Stripped != 2 {
		t.Fatalf("reseal: %s; want 2 sealed, 2 stripped", res)
	}
	for _, id := range []string{live, gone} {
		raw, err := plain.LoadRaw(ctx, id, 1, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, env := range raw {
			for _, p := range []string{"legacy-", "Legacy", "Old Road", "Oldtown", "12345"} {
				if bytes.Contains(env.Payload, []byte(p)) {
					t.Fatalf("%s still holds %q after reseal", env, p)
				}
			}
		}
	}
	after := customer.New(live)
	if envs, err := sealing.LoadRange(ctx, live, 1, 10); err != nil || es.Replay(after, envs) != nil {
		t.Fatalf("load after: %v", err)
	}
	if after.Email != before.Email || after.FirstName != "Legacy" || after.Addresses[0].Line1 != "Old Road 1" || after.Tier != customer.TierGold {
		t.Fatalf("after reseal %+v, before %+v", after, before)
	}
	erased := customer.New(gone)
	if envs, err := sealing.LoadRange(ctx, gone, 1, 10); err != nil || es.Replay(erased, envs) != nil {
		t.Fatalf("load erased: %v", err)
	}
	if erased.Email != codec.ErasedMarker || erased.Tier != customer.TierGold {
		t.Fatalf("erased customer after reseal: %+v", erased)
	}
	orderAfter, err := plain.LoadRaw(ctx, ord, 1, 10)
	if err != nil || !bytes.Equal(orderAfter[0].Payload, orderBefore[0].Payload) {
		t.Fatalf("the order's event changed: %v", err)
	}
	var n int
	if err := s.Query(`SELECT COUNT(*) FROM snapshots WHERE aggregate_id = ?`, live).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d snapshots left, %v", n, err)
	}
	if res, err := reseal.Run(ctx, s, plain, keys, nil); err != nil || res.Sealed != 0 || res.Stripped != 0 {
		t.Fatalf("second reseal: %s, %v", res, err)
	}
}
