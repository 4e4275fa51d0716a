package app

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/es/esmem"
)

// TestCreationIsDecidedWithoutReadingTheNewAggregate: a CreateOrder used to read the order it
// creates (snapshot, head and rows, all finding nothing: three of a creation's eight
// requests). Now it is decided on a new order and the creation's condition checks that none
// exists; a repeat of the command still gets its first outcome, and a creation under an id that
// holds an order is still refused and changes nothing.
func TestCreationIsDecidedWithoutReadingTheNewAggregate(t *testing.T) {
	w := &loadWatch{Store: esmem.New(codec.NewRegistry())}
	rej := &memRejections{store: w.Store, table: map[string]es.Rejection{}}
	svc := NewService(w, Options{SnapshotEvery: 10, Rejections: rej})
	customers := NewCustomerHandler(svc, nil)
	orders := NewOrderHandler(svc, codec.OrderSnapshotCodec{}, customers)
	ctx := context.Background()
	customerID := register(ctx, t, customers)

	id, commandID := ids.New(), ids.New()
	create := Request[order.Command]{AggregateID: id, Name: "CreateOrder", CommandID: commandID, Fingerprint: "fp",
		Command: order.Create{OrderID: id, CustomerID: customerID, Items: memItems(2)}}
	w.reset()
	first, err := orders.Execute(ctx, create)
	if err != nil || first.Version != 1 {
		t.Fatalf("create: %+v, %v", first, err)
	}
	if w.loaded(id) {
		t.Errorf("the creation read the order it creates")
	}

	// A repeat (its answer lost, say) from another replica, which holds nothing in its cache.
	other := NewService(w, Options{SnapshotEvery: 10, Rejections: rej})
	otherOrders := NewOrderHandler(other, codec.OrderSnapshotCodec{}, NewCustomerHandler(other, nil))
	again, err := otherOrders.Execute(ctx, create)
	if err != nil || !again.Duplicate || again.Version != 1 || len(again.EventIDs) != 1 || again.EventIDs[0] != first.EventIDs[0] {
		t.Errorf("repeated create: %+v, %v; want the first outcome %+v", again, err, first)
	}

	// Another creation under the same id.
	create.CommandID, create.Fingerprint = ids.New(), "fp2"
	if res, err := otherOrders.Execute(ctx, create); err == nil {
		t.Errorf("a second creation of order %s succeeded: %+v", id, res)
	}
	if head, err := w.Head(ctx, id); err != nil || head.Version != 1 {
		t.Errorf("order %s after a second creation: version %d, %v; want 1", id, head.Version, err)
	}
}

// refuseFirstAppend is the in-memory store refusing its first append before writing anything,
// as the CQL store does when sealing a payload fails.
type refuseFirstAppend struct {
	*esmem.Store
	refused bool
}

func (r *refuseFirstAppend) Append(ctx context.Context, req es.AppendRequest) (es.AppendResult, error) {
	if !r.refused {
		r.refused = true
		return es.AppendResult{}, fmt.Errorf("seal the payload: %w", es.ErrRuleViolation)
	}
	return r.Store.Append(ctx, req)
}

// TestCreationRefusedUnwrittenGoesOnByTheReadPath: when the store refuses a creation decided
// without a read before writing anything, the refusal is not the answer: the command goes on
// by the read path, which answers from what the store holds (here: it creates the order).
func TestCreationRefusedUnwrittenGoesOnByTheReadPath(t *testing.T) {
	st := &refuseFirstAppend{Store: esmem.New(codec.NewRegistry())}
	svc := NewService(st, Options{SnapshotEvery: 10})
	customers := NewCustomerHandler(svc, nil)
	orders := NewOrderHandler(svc, codec.OrderSnapshotCodec{}, customers)
	ctx := context.Background()
	st.refused = true // the customer's registration goes through
	customerID := register(ctx, t, customers)
	st.refused = false

	id := ids.New()
	res, err := orders.Execute(ctx, Request[order.Command]{AggregateID: id, Name: "CreateOrder", CommandID: ids.New(), Fingerprint: "fp",
		Command: order.Create{OrderID: id, CustomerID: customerID, Items: memItems(1)}})
	if err != nil || res.Version != 1 {
		t.Fatalf("create after a refused first append: %+v, %v; want version 1", res, err)
	}
}

// recallAfterLoad is a rejection log whose Recall answers only once the store has begun a Load
// of the aggregate `after` (an answer that only comes once that read is running beside it).
type recallAfterLoad struct {
	*memRejections
	w     *loadWatch
	after string
}

func (r *recallAfterLoad) Recall(ctx context.Context, aggregateID, commandID string) (es.Rejection, bool, error) {
	for deadline := time.Now().Add(5 * time.Second); !r.w.loaded(r.after); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return es.Rejection{}, false, fmt.Errorf("the recall waited 5 s for a read of %s that never began beside it", r.after)
		}
	}
	return r.memRejections.Recall(ctx, aggregateID, commandID)
}

// TestCreationRecallsRejectionsBesideItsCustomerRead: a creation decided without reading its
// order used to recall a remembered rejection of its command id first and read its customer
// after: two sequential round trips before the append. Now the two run side by side. The
// rejection log here answers only once the customer is being read: on the old code the recall
// fails after 5 s (the command then goes by the read path, whose recall fails the same way).
// Counted in ordersys_command_presumed_new_total.
func TestCreationRecallsRejectionsBesideItsCustomerRead(t *testing.T) {
	w := &loadWatch{Store: esmem.New(codec.NewRegistry())}
	rej := &recallAfterLoad{memRejections: &memRejections{store: w.Store, table: map[string]es.Rejection{}}, w: w}
	svc := NewService(w, Options{SnapshotEvery: 10, Rejections: rej})
	customers := NewCustomerHandler(svc, nil)
	orders := NewOrderHandler(svc, codec.OrderSnapshotCodec{}, customers)
	ctx := context.Background()
	customerID := register(ctx, t, customers) // without a command id: nothing recalled
	rej.after = customerID
	w.reset()

	id := ids.New()
	res, err := orders.Execute(ctx, Request[order.Command]{AggregateID: id, Name: "CreateOrder", CommandID: ids.New(), Fingerprint: "fp",
		Command: order.Create{OrderID: id, CustomerID: customerID, Items: memItems(1)}})
	if err != nil || res.Version != 1 {
		t.Fatalf("create: %+v, %v; want version 1", res, err)
	}
	if w.loaded(id) {
		t.Errorf("the creation read the order it creates")
	}
	if got := testutil.ToFloat64(svc.opts.Metrics.presumedNew.WithLabelValues("CreateOrder", newAppended)); got != 1 {
		t.Errorf("ordersys_command_presumed_new_total{result=appended} = %v, want 1", got)
	}
}
