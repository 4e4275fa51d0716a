package query_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// appendCustomer decides cmd on the customer's stored state and appends the events.
func appendCustomer(t *testing.T, e *sharedEnv, id string, cmd customer.Command) {
	t.Helper()
	c := customer.New(id)
	envs, err := e.store.LoadRange(ctxT(t), id, 1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if err := es.Replay(c, envs); err != nil {
		t.Fatal(err)
	}
	events, err := c.Decide(cmd, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out := es.NewEnvelopes(c, events, es.Metadata{CausationID: ids.New(), CorrelationID: ids.New()}, ms(time.Now()), ids.New)
	if _, err := e.store.Append(ctxT(t), es.AppendRequest{AggregateID: id, AggregateType: customer.AggregateType, ExpectedVersion: c.Version(), Events: out}); err != nil {
		t.Fatal(err)
	}
}

// TestCustomerHistoryAndErasure: GetCustomerHistory and GetCustomerAt decrypt the personal data
// of a customer's events (stored sealed); after the customer's erasure (its data key deleted,
// CustomerErased appended) the history shows the personal fields as erased instead of failing,
// the state at an earlier version has them erased, and the current state is ERASED without them.
func TestCustomerHistoryAndErasure(t *testing.T) {
	s, e := defaultServer(t)
	ctx := ctxT(t)
	id := ids.New()
	registerCustomer(t, e.store, id)
	appendCustomer(t, e, id, customer.ChangeEmail{Email: "ada.new@example.org"})

	h, err := s.cq.GetCustomerHistory(ctx, &ordersv1.GetCustomerHistoryRequest{CustomerId: id})
	if err != nil || len(h.GetEvents()) != 2 {
		t.Fatalf("history: %v, %v", h, err)
	}
	if js := h.GetEvents()[1].GetPayloadJson(); !strings.Contains(js, "ada.new@example.org") || strings.Contains(js, "sealed\":{") {
		t.Fatalf("history before erasure: %s", js)
	}
	at, err := s.cq.GetCustomerAt(ctx, &ordersv1.GetCustomerAtRequest{CustomerId: id, Point: &ordersv1.GetCustomerAtRequest_Version{Version: 1}})
	if err != nil || at.GetCustomer().GetEmail() != "ada@example.com" || at.GetCustomer().GetLastName() != "Lovelace" {
		t.Fatalf("at version 1: %v, %v", at, err)
	}

	if err := e.keys.Erase(ctx, id); err != nil {
		t.Fatal(err)
	}
	appendCustomer(t, e, id, customer.Erase{})
	h, err = s.cq.GetCustomerHistory(ctx, &ordersv1.GetCustomerHistoryRequest{CustomerId: id})
	if err != nil || len(h.GetEvents()) != 3 || h.GetEvents()[2].GetEventType() != customer.EventCustomerErased {
		t.Fatalf("history after erasure: %v, %v", h, err)
	}
	for _, ev := range h.GetEvents() {
		// The personal values themselves: a bare "ada" also occurs in hex ids (…9adad8…).
		for _, personal := range []string{"ada@example.com", "ada.new@example.org", `"Ada"`, "Lovelace"} {
			if js := ev.GetPayloadJson(); strings.Contains(js, personal) {
				t.Fatalf("history after erasure shows personal data %q: %s", personal, js)
			}
		}
	}
	if js := h.GetEvents()[0].GetPayloadJson(); !strings.Contains(js, codec.ErasedMarker) {
		t.Fatalf("registration after erasure: %s, want %s fields", js, codec.ErasedMarker)
	}
	at, err = s.cq.GetCustomerAt(ctx, &ordersv1.GetCustomerAtRequest{CustomerId: id, Point: &ordersv1.GetCustomerAtRequest_Version{Version: 2}})
	if err != nil || at.GetCustomer().GetEmail() != codec.ErasedMarker || at.GetCustomer().GetFirstName() != codec.ErasedMarker || at.GetCustomer().GetVersion() != 2 {
		t.Fatalf("at version 2 after erasure: %v, %v", at, err)
	}
	at, err = s.cq.GetCustomerAt(ctx, &ordersv1.GetCustomerAtRequest{CustomerId: id, Point: &ordersv1.GetCustomerAtRequest_At{At: timestamppb.Now()}})
	c := at.GetCustomer()
	if err != nil || c.GetStatus() != ordersv1.CustomerStatus_CUSTOMER_STATUS_ERASED || c.GetEmail() != "" || c.GetFirstName() != "" || c.GetCreatedAt() == nil {
		t.Fatalf("now after erasure: %v, %v", at, err)
	}
}
