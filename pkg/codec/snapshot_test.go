package codec_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"google.golang.org/protobuf/proto"
)

// drive decides and applies commands on an aggregate through envelopes, returning them.
func drive[A interface {
	es.Aggregate
	Decide(C, time.Time) ([]es.Event, error)
}, C any](t *testing.T, a A, cmds ...C) []es.Envelope {
	t.Helper()
	var all []es.Envelope
	now := t0
	for _, c := range cmds {
		now = now.Add(time.Hour)
		evs, err := a.Decide(c, now)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		envs := es.NewEnvelopes(a, evs, es.Metadata{}, now, ids.New)
		if err := es.Replay(a, envs); err != nil {
			t.Fatal(err)
		}
		all = append(all, envs...)
	}
	return all
}

func snapshotRoundTrip(t *testing.T, sc es.SnapshotCodec, a es.Aggregate) es.Aggregate {
	t.Helper()
	state, err := sc.Take(a)
	if err != nil {
		t.Fatal(err)
	}
	got, err := sc.Restore(es.Snapshot{
		AggregateID: a.AggregateID(), AggregateType: a.AggregateType(), Version: a.Version(),
		SchemaVersion: sc.SchemaVersion(), State: state, TakenAt: t0,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("restored\n%+v\nwant\n%+v", got, a)
	}
	return got
}

func TestOrderSnapshotRoundTrip(t *testing.T) {
	o := order.New(orderID)
	drive[*order.Order, order.Command](t, o,
		order.Create{Customer: order.CustomerActive, OrderID: orderID, CustomerID: customerID, Items: items()},
		order.UpdateItems{Items: items()[:1], Reason: "split"},
		order.Confirm{},
		order.Ship{TrackingNumber: "1Z", Carrier: "UPS"},
	)
	sc := codec.SnapshotCodecs()[order.AggregateType]
	restored := snapshotRoundTrip(t, sc, o).(*order.Order)
	if restored.Version() != 4 {
		t.Fatalf("version %d", restored.Version())
	}
	// the restored order goes on deciding and applying like the original
	drive[*order.Order, order.Command](t, restored, order.Deliver{Signature: "ok"})
	drive[*order.Order, order.Command](t, o, order.Deliver{Signature: "ok"})
	if restored.Version() != 5 || restored.Status != order.StatusDelivered || !restored.CreatedAt.Equal(o.CreatedAt) {
		t.Fatalf("after restore %+v", restored)
	}
	snapshotRoundTrip(t, sc, o)

	cancelled := order.New(orderID)
	drive[*order.Order, order.Command](t, cancelled,
		order.Create{Customer: order.CustomerActive, OrderID: orderID, CustomerID: customerID, Items: items()},
		order.Cancel{Reason: "dup", CancelledBy: "me"})
	snapshotRoundTrip(t, sc, cancelled)
}

func TestCustomerSnapshotRoundTrip(t *testing.T) {
	c := customer.New(customerID)
	second := addrFull
	second.AddressID, second.IsDefault, second.Label = addr2, false, ""
	wallet := customer.PaymentMethod{PaymentMethodID: pm2, Kind: customer.KindWallet, Brand: "paypal"}
	drive[*customer.Customer, customer.Command](t, c,
		customer.Register{CustomerID: customerID, Email: "jane@example.com", FirstName: "Jane", LastName: "Doe", Phone: "+4915112345678"},
		customer.AddAddress{Address: addrFull},
		customer.AddAddress{Address: second},
		customer.AddPaymentMethod{PaymentMethod: cardFull},
		customer.AddPaymentMethod{PaymentMethod: wallet},
		customer.UpgradeTier{Tier: customer.TierGold},
		customer.Suspend{Reason: "review"},
	)
	sc := codec.SnapshotCodecs()[customer.AggregateType]
	restored := snapshotRoundTrip(t, sc, c).(*customer.Customer)
	if restored.Version() != 7 || len(restored.Addresses) != 2 || len(restored.PaymentMethods) != 2 {
		t.Fatalf("restored %+v", restored)
	}
	// snapshot + later events = full replay
	drive[*customer.Customer, customer.Command](t, restored, customer.Reactivate{}, customer.RemoveAddress{AddressID: addr1})
	drive[*customer.Customer, customer.Command](t, c, customer.Reactivate{}, customer.RemoveAddress{AddressID: addr1})
	snapshotRoundTrip(t, sc, c)
	if !reflect.DeepEqual(restored, c) {
		t.Fatal("snapshot + events differs from the original")
	}
	// empty collections come back as nil, like the domain keeps them
	bare := customer.New(customerID)
	drive[*customer.Customer, customer.Command](t, bare,
		customer.Register{CustomerID: customerID, Email: "a@b.de", FirstName: "A", LastName: "B"})
	snapshotRoundTrip(t, sc, bare)
}

func TestSnapshotRefusals(t *testing.T) {
	o := order.New(orderID)
	drive[*order.Order, order.Command](t, o, order.Create{Customer: order.CustomerActive, OrderID: orderID, CustomerID: customerID, Items: items()})
	oc, cc := codec.OrderSnapshotCodec{}, codec.CustomerSnapshotCodec{}
	state, err := oc.Take(o)
	if err != nil {
		t.Fatal(err)
	}
	good := es.Snapshot{AggregateID: orderID, AggregateType: order.AggregateType, Version: 1, SchemaVersion: 1, State: state}
	bad := func(f func(*es.Snapshot)) es.Snapshot { s := good; f(&s); return s }
	for name, s := range map[string]es.Snapshot{
		"schema version 2": bad(func(s *es.Snapshot) { s.SchemaVersion = 2 }),
		"schema version 0": bad(func(s *es.Snapshot) { s.SchemaVersion = 0 }),
		"customer type":    bad(func(s *es.Snapshot) { s.AggregateType = customer.AggregateType }),
		"other id":         bad(func(s *es.Snapshot) { s.AggregateID = customerID }),
		"version 0":        bad(func(s *es.Snapshot) { s.Version = 0 }),
		"garbage":          bad(func(s *es.Snapshot) { s.State = []byte{0xff} }),
		"no status":        bad(func(s *es.Snapshot) { s.State, _ = proto.Marshal(&ordersv1.OrderSnapshot{OrderId: orderID}) }),
	} {
		if _, err := oc.Restore(s); err == nil {
			t.Errorf("%s: restored", name)
		}
	}
	if _, err := cc.Restore(good); err == nil {
		t.Error("customer codec restored an order")
	}
	if _, err := cc.Take(o); err == nil {
		t.Error("customer codec took an order")
	}
	if _, err := oc.Take(customer.New(customerID)); err == nil {
		t.Error("order codec took a customer")
	}
	noStatus, _ := proto.Marshal(&ordersv1.CustomerSnapshot{CustomerId: customerID})
	if _, err := cc.Restore(es.Snapshot{AggregateID: customerID, Version: 1, SchemaVersion: 1, State: noStatus}); err == nil {
		t.Error("customer snapshot without status restored")
	}
}
