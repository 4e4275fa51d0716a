package readmodel_test

import (
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

// BenchmarkOrderWrite compares, in one run, the order write as it was before issue 11 (one
// logged batch of plain INSERTs and the old status row's DELETE, wall-clock timestamps) with
// readmodel's Save (the same rows with version-derived USING TIMESTAMP, the customer details as
// separate statements of the batch). Each operation moves one order from CREATED (v1) to
// CONFIRMED (v2). It reports figures only:
//
//	cd pkg && go test -run '^$' -bench OrderWrite -benchtime 3000x ./readmodel/
func BenchmarkOrderWrite(b *testing.B) {
	s, _ := cqltest.Keyspace(b)
	tables := readmodel.NewOrderTables(s, 1)
	created := time.Now().UTC().Truncate(time.Millisecond)
	states := func() (readmodel.Order, readmodel.Order) {
		prev := newOrder(b, gocql.TimeUUID().String(), gocql.TimeUUID().String(), order.StatusCreated, created, 1)
		next := prev
		st := *prev.State
		st.Status = order.StatusConfirmed
		st.SetVersion(2)
		next.State = &st
		return prev, next
	}
	b.Run("plain-batch", func(b *testing.B) {
		b.SetParallelism(4) // 4 × GOMAXPROCS writers
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				prev, next := states()
				if err := plainSave(s, prev, next); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	})
	b.Run("timestamped-save", func(b *testing.B) {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				prev, next := states()
				if err := tables.Save(b.Context(), &prev, next); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	})
}

// plainSave is the order write before issue 11, kept here only as the benchmark's baseline.
func plainSave(s *gocql.Session, prev, next readmodel.Order) error {
	const cols = `order_id, customer_id, status, items, total_cents, version, tracking_number, carrier, cancel_reason, delivery_signature, customer_email, customer_name, customer_version, created_at, updated_at`
	o := next.State
	id, _ := gocql.ParseUUID(o.AggregateID())
	cust, _ := gocql.ParseUUID(o.CustomerID)
	shard := readmodel.StatusShard(o.AggregateID())
	items := `[{"product_id":"p","quantity":2,"unit_price_cents":150}]`
	vals := []any{id, cust, o.Status.String(), items, o.TotalCents, o.Version(), o.TrackingNumber, o.Carrier, o.CancelReason,
		o.DeliverySignature, next.CustomerEmail, next.CustomerName, next.CustomerVersion, o.CreatedAt, o.UpdatedAt}
	b := s.NewBatch(gocql.LoggedBatch)
	b.Query(`INSERT INTO order_read_model (`+cols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, vals...)
	b.Query(`INSERT INTO orders_by_customer (`+cols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, vals...)
	b.Query(`DELETE FROM orders_by_status WHERE status = ? AND shard = ? AND created_at = ? AND order_id = ?`,
		prev.State.Status.String(), shard, o.CreatedAt, id)
	b.Query(`INSERT INTO orders_by_status (shard, `+cols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		append([]any{shard}, vals...)...)
	return s.ExecuteBatch(b)
}
