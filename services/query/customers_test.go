package query_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// projectedCustomer decides a customer's registration, an address, a card and an upgrade, and
// returns the resulting state (as the projector would write it).
func projectedCustomer(t *testing.T) *customer.Customer {
	t.Helper()
	id := ids.New()
	c := customer.New(id)
	now := ms(time.Now())
	cmds := []customer.Command{
		customer.Register{CustomerID: id, Email: "grace@example.com", FirstName: "Grace", LastName: "Hopper", Phone: "+15551234567"},
		customer.AddAddress{Address: customer.Address{AddressID: ids.New(), Label: "home", Line1: "1 Navy Way", City: "Arlington",
			Region: "VA", PostalCode: "22201", CountryCode: "US"}},
		customer.AddPaymentMethod{PaymentMethod: customer.PaymentMethod{PaymentMethodID: ids.New(), Kind: customer.KindCard,
			Brand: "VISA", Last4: "4242", ExpMonth: 12, ExpYear: 2039}},
		customer.UpgradeTier{Tier: customer.TierGold},
	}
	for i, cmd := range cmds {
		events, err := c.Decide(cmd, now)
		if err != nil {
			t.Fatalf("decide %T: %v", cmd, err)
		}
		envs := es.NewEnvelopes(c, events, es.Metadata{}, now.Add(time.Duration(i)*time.Second), ids.New)
		if err := es.Replay(c, envs); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestGetCustomer(t *testing.T) {
	srv, e := defaultServer(t)
	c := projectedCustomer(t)
	if err := e.custs.Save(ctxT(t), c); err != nil {
		t.Fatal(err)
	}
	res, err := srv.cq.GetCustomer(ctxT(t), &ordersv1.GetCustomerRequest{CustomerId: c.AggregateID()})
	if err != nil {
		t.Fatal(err)
	}
	if want := codec.CustomerToProto(c); !proto.Equal(res.GetCustomer(), want) {
		t.Fatalf("GetCustomer:\n got %v\nwant %v", res.GetCustomer(), want)
	}
	if res.GetCustomer().GetTier() != ordersv1.CustomerTier_CUSTOMER_TIER_GOLD || len(res.GetCustomer().GetAddresses()) != 1 ||
		len(res.GetCustomer().GetPaymentMethods()) != 1 {
		t.Errorf("customer not complete: %v", res.GetCustomer())
	}

	if _, err := srv.cq.GetCustomer(ctxT(t), &ordersv1.GetCustomerRequest{CustomerId: ids.New()}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown customer: %v, want NotFound", err)
	}
	_, err = srv.cq.GetCustomer(ctxT(t), &ordersv1.GetCustomerRequest{CustomerId: "nope"})
	checkBadRequest(t, err, "customer_id")
}
