package readmodel_test

import (
	"fmt"
	"reflect"
	"sort"
	"testing"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

// TestSchemaOfRebuiltVersionMatchesMigration checks that the tables CreateTables makes for a new
// version have exactly the columns, kinds, clustering orders and types of version 1 from the
// migrations, as the server reports them (the whole statement, not only its first line, is
// what the server runs).
func TestSchemaOfRebuiltVersionMatchesMigration(t *testing.T) {
	s, ks := cqltest.Keyspace(t)
	for _, p := range readmodel.Projections() {
		if err := readmodel.CreateTables(ctx(t), s, p, 2); err != nil {
			t.Fatal(err)
		}
		tables, _ := readmodel.ProjectionTables(p)
		for _, base := range tables {
			v1, v2 := columns(t, s, ks, base), columns(t, s, ks, readmodel.TableName(base, 2))
			if len(v1) == 0 || !reflect.DeepEqual(v1, v2) {
				t.Errorf("%s: v1 columns %v\nv2 columns %v", base, v1, v2)
			}
		}
	}
}

// columns lists a table's columns as name/kind/position/clustering order/type, sorted.
func columns(t *testing.T, s *gocql.Session, ks, table string) []string {
	t.Helper()
	iter := s.Query(`SELECT column_name, kind, position, clustering_order, type FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?`, ks, table).Iter()
	var out []string
	var name, kind, order, typ string
	var pos int
	for iter.Scan(&name, &kind, &pos, &order, &typ) {
		out = append(out, fmt.Sprintf("%s/%s/%d/%s/%s", name, kind, pos, order, typ))
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}
