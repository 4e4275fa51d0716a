package readmodel_test

import (
	"context"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

// TestLegacyWritesAreDetected: no rows, and rows written by Save, are not reported; an order
// row written as the first release wrote it (no USING TIMESTAMP: a wall-clock write time, which
// later version-derived writes never replace) makes LegacyWrites report the orders projection.
func TestLegacyWritesAreDetected(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	created := time.Now().UTC().Truncate(time.Millisecond)
	check := func(what string, want bool) {
		t.Helper()
		legacy, err := readmodel.LegacyWrites(ctx, s, readmodel.ProjectionOrders)
		if err != nil || legacy != want {
			t.Fatalf("%s: LegacyWrites = %v, %v; want %v", what, legacy, err, want)
		}
	}
	check("no rows", false)
	for range 3 {
		o := newOrder(t, gocql.TimeUUID().String(), gocql.TimeUUID().String(), order.StatusCreated, created, 1)
		if err := readmodel.NewOrderTables(s, 1).Save(ctx, nil, o); err != nil {
			t.Fatal(err)
		}
	}
	check("rows written by Save", false)
	o := newOrder(t, gocql.TimeUUID().String(), gocql.TimeUUID().String(), order.StatusCreated, created, 1)
	if err := plainSave(s, o, o); err != nil {
		t.Fatal(err)
	}
	check("a row written as the first release wrote it", true)
}
