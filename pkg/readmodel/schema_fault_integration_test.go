package readmodel_test

import (
	"context"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/cql/cqlfault"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

// TestCreateTablesOutlastsASlowSchemaChange delays every answer of a real Cassandra (through a
// toxiproxy latency toxic) past the session's request timeout while a rebuild creates a new
// version's tables, then lifts the delay: the CREATE TABLE statements that timed out (and may
// have been applied) are run again, and the tables are created. Before execDDL, the first timeout
// failed the rebuild (seen under CI load in TestRollingUpgradeFromTheFirstRelease).
func TestCreateTablesOutlastsASlowSchemaChange(t *testing.T) {
	_, ks := cqltest.Keyspace(t)
	p := cqlfault.Start(t)
	s := p.Session(t, ks, 300*time.Millisecond)

	p.AddToxic(t, `{"name":"slow","type":"latency","stream":"downstream","attributes":{"latency":1000}}`)
	lifted := time.AfterFunc(2*time.Second, func() { p.RemoveToxic("slow") })
	defer lifted.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	if err := readmodel.CreateTables(ctx, s, readmodel.ProjectionCustomers, 2); err != nil {
		t.Fatalf("create tables while the store answers slowly: %v", err)
	}
	if time.Since(start) < 2*time.Second {
		t.Fatalf("created in %v, before the delay was lifted: the fault was not in effect", time.Since(start))
	}
	var n int
	if err := s.Query(`SELECT count(*) FROM ` + readmodel.TableName(readmodel.TableCustomerReadModel, 2)).Scan(&n); err != nil {
		t.Fatalf("the new table is not there: %v", err)
	}
}
