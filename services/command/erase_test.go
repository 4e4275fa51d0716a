package command_test

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/services/command/internal/app"
)

// TestEraseCustomer drives a customer through register, change email, add an address and a
// card, an order, then EraseCustomer on the real server and Cassandra: the event store rows and
// outbox rows of the customer never held its personal data in clear; after erasure its data key
// is gone, a fresh load (no cache) rebuilds an ERASED customer without personal data, every
// later command fails with FAILED_PRECONDITION (customer.erased), a retry with the same
// command id returns the first outcome, the order's events are intact, and erasing an unknown
// customer is NOT_FOUND.
func TestEraseCustomer(t *testing.T) {
	e := env(t)
	s := defaultServer(t)
	ctx := ctxT(t)
	id := ids.New()
	personal := []string{"erin.erasable@example.com", "erin.new@example.org", "Erinna", "Erasmussen", "+4915199887766", "Erasure Allee 5", "Bielefeld", "visa"}
	check(t, id, 1, 1)(s.cc.RegisterCustomer(ctx, &ordersv1.RegisterCustomerRequest{
		CustomerId: id, Email: personal[0], FirstName: personal[2], LastName: personal[3], Phone: personal[4]}))
	check(t, id, 2, 1)(s.cc.ChangeEmail(ctx, &ordersv1.ChangeEmailRequest{CustomerId: id, Email: personal[1]}))
	check(t, id, 3, 1)(s.cc.AddAddress(ctx, &ordersv1.AddAddressRequest{CustomerId: id, Address: &ordersv1.Address{
		AddressId: ids.New(), Line1: personal[5], City: personal[6], PostalCode: "33602", CountryCode: "DE"}}))
	check(t, id, 4, 1)(s.cc.AddPaymentMethod(ctx, &ordersv1.AddPaymentMethodRequest{CustomerId: id, PaymentMethod: &ordersv1.PaymentMethod{
		PaymentMethodId: ids.New(), Kind: ordersv1.PaymentMethodKind_PAYMENT_METHOD_KIND_CARD, Brand: personal[7], Last4: "4242", ExpMonth: 12, ExpYear: 2040}}))
	orderID := ids.New()
	check(t, orderID, 1, 1)(s.oc.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: orderID, CustomerId: id, Items: items(2)}))

	noPlaintext := func(what string, b []byte) {
		t.Helper()
		for _, p := range personal {
			if bytes.Contains(b, []byte(p)) {
				t.Errorf("%s holds %q in clear", what, p)
			}
		}
	}
	scan := func() {
		t.Helper()
		// Outbox rows are written after the commands answered: wait for them.
		if err := e.store.Close(ctx); err != nil {
			t.Fatal(err)
		}
		raw, err := e.store.LoadRaw(ctx, id, 1, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, env := range raw {
			noPlaintext("event_store "+env.String(), env.Payload)
		}
		iter := e.session.Query(`SELECT envelope FROM outbox_messages WHERE aggregate_id = ? ALLOW FILTERING`, id).WithContext(ctx).Iter()
		var envelope []byte
		n := 0
		for iter.Scan(&envelope) {
			noPlaintext("outbox row", envelope)
			n++
		}
		if err := iter.Close(); err != nil {
			t.Fatal(err)
		}
		if n < len(raw) {
			t.Fatalf("%d outbox rows of %d events", n, len(raw))
		}
		iter = e.session.Query(`SELECT state FROM snapshots WHERE aggregate_id = ?`, id).WithContext(ctx).Iter()
		var state []byte
		for iter.Scan(&state) {
			noPlaintext("snapshot", state)
		}
		_ = iter.Close()
	}
	scan()

	// A request that fails (a stale expected version, a malformed command id) erases nothing.
	wantCode(t, errOf(s.cc.EraseCustomer(ctx, &ordersv1.EraseCustomerRequest{CustomerId: id, ExpectedVersion: i64(3)})), codes.Aborted)
	wantCode(t, errOf(s.cc.EraseCustomer(ctx, &ordersv1.EraseCustomerRequest{CustomerId: id, CommandId: "nope"})), codes.InvalidArgument)
	if _, err := e.keys.DataKey(ctx, id, false); err != nil {
		t.Fatalf("a failed erasure deleted the data key: %v", err)
	}

	cmdID := ids.New()
	first := check(t, id, 5, 1)(s.cc.EraseCustomer(ctx, &ordersv1.EraseCustomerRequest{CustomerId: id, CommandId: cmdID, ExpectedVersion: i64(4)}))
	again := check(t, id, 5, 1)(s.cc.EraseCustomer(ctx, &ordersv1.EraseCustomerRequest{CustomerId: id, CommandId: cmdID, ExpectedVersion: i64(4)}))
	if again.GetEventIds()[0] != first.GetEventIds()[0] {
		t.Fatalf("retry with the same command id appended %v, first %v", again.GetEventIds(), first.GetEventIds())
	}
	scan()

	var keyset []byte
	if err := e.session.Query(`SELECT keyset FROM customer_keys WHERE customer_id = ?`, id).WithContext(ctx).Scan(&keyset); err != nil || keyset != nil {
		t.Fatalf("data key after erasure: %d bytes, %v", len(keyset), err)
	}
	if _, err := e.keys.DataKey(ctx, id, true); err == nil {
		t.Fatal("a data key was made for an erased customer")
	}

	// A fresh load, through a registry whose key store has no cache: the ERASED customer without
	// personal data, its history showing erased fields as erased.
	fresh := freshStore(t, e)
	envs, err := fresh.LoadRange(ctx, id, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	reg := customer.New(id)
	if err := es.Replay(reg, envs); err != nil {
		t.Fatal(err)
	}
	if reg.Status != customer.StatusErased || reg.Email != "" || reg.FirstName != "" || reg.Phone != "" || reg.Addresses != nil || reg.PaymentMethods != nil || reg.Version() != 5 {
		t.Fatalf("erased customer loaded as %+v", reg)
	}
	if first := envs[0].Event.(customer.CustomerRegistered); first.Email != codec.ErasedMarker || first.FirstName != codec.ErasedMarker {
		t.Fatalf("history after erasure: %+v", first)
	}
	h := app.NewCustomerHandler(app.NewService(fresh, app.Options{CacheSize: -1}), codec.SealedCustomerSnapshots{Keys: e.keys})
	if c, err := h.Load(ctx, id); err != nil || c.Status != customer.StatusErased {
		t.Fatalf("command service load after erasure: %+v, %v", c, err)
	}

	// Every later command is refused; orders of the customer stay.
	if rule := preconditionType(t, errOf(s.cc.ChangeEmail(ctx, &ordersv1.ChangeEmailRequest{CustomerId: id, Email: "x@example.com"}))); rule != customer.RuleErased {
		t.Fatalf("ChangeEmail after erasure: rule %s", rule)
	}
	if rule := preconditionType(t, errOf(s.cc.EraseCustomer(ctx, &ordersv1.EraseCustomerRequest{CustomerId: id}))); rule != customer.RuleErased {
		t.Fatalf("second erasure: rule %s", rule)
	}
	wantCode(t, errOf(s.oc.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: ids.New(), CustomerId: id, Items: items(1)})), codes.FailedPrecondition)
	if evs := loadEvents(t, e.store, orderID); len(evs) != 1 || evs[0].EventType != "OrderCreated" {
		t.Fatalf("order events after erasure: %v", evs)
	}
	wantCode(t, errOf(s.cc.EraseCustomer(ctx, &ordersv1.EraseCustomerRequest{CustomerId: ids.New()})), codes.NotFound)
}

// freshStore is an event store on e's keyspace whose registry opens personal data through a
// key store without cache.
func freshStore(t *testing.T, e *sharedEnv) *cql.EventStore {
	t.Helper()
	reg := codec.NewRegistry()
	reg.SetSealer(codec.PIISealer{Keys: e.keys})
	return cql.NewEventStore(e.session, reg, cql.Options{})
}

// errOf returns the error of a call's two results.
func errOf[T any](_ T, err error) error { return err }

// TestCustomerWithLostKey: a customer whose customer_keys row is deleted (a lost key, not an
// erasure) is not taken for erased. A command fails with INTERNAL, on a server that has the
// customer cached (no new key is made to seal the new e-mail with) and on one that loads it;
// EraseCustomer still erases it, after which it loads as ERASED.
func TestCustomerWithLostKey(t *testing.T) {
	e := env(t)
	s := defaultServer(t)
	ctx := ctxT(t)
	id := registerCustomer(t, s)
	check(t, id, 2, 1)(s.cc.ChangeEmail(ctx, &ordersv1.ChangeEmailRequest{CustomerId: id, Email: "lost-" + id[:8] + "@example.com"}))
	if err := e.session.Query(`DELETE FROM customer_keys WHERE customer_id = ?`, id).WithContext(ctx).Exec(); err != nil {
		t.Fatal(err)
	}
	e.keys.Forget(id) // else the shared key store's cache hides the loss for its TTL

	later := &ordersv1.ChangeEmailRequest{CustomerId: id, Email: "later-" + id[:8] + "@example.com"}
	wantCode(t, errOf(s.cc.ChangeEmail(ctx, later)), codes.Internal)
	var rows int
	if err := e.session.Query(`SELECT COUNT(*) FROM customer_keys WHERE customer_id = ?`, id).WithContext(ctx).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("%d key rows, %v: a new key was made for a customer whose key was lost", rows, err)
	}
	loading := defaultServer(t)
	wantCode(t, errOf(loading.cc.ChangeEmail(ctx, later)), codes.Internal)

	check(t, id, 3, 1)(loading.cc.EraseCustomer(ctx, &ordersv1.EraseCustomerRequest{CustomerId: id}))
	h := app.NewCustomerHandler(app.NewService(freshStore(t, e), app.Options{CacheSize: -1}), codec.SealedCustomerSnapshots{Keys: e.keys})
	if c, err := h.Load(ctx, id); err != nil || c.Status != customer.StatusErased {
		t.Fatalf("load after erasing a customer with a lost key: %+v, %v", c, err)
	}
}
