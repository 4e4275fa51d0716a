package readmodel_test

import (
	"strings"
	"testing"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

func TestStatusShardIsStableAndCaseInsensitive(t *testing.T) {
	id := "3F2504E0-4F89-11D3-9A0C-0305E82C3301"
	a, b := readmodel.StatusShard(id), readmodel.StatusShard("3f2504e0-4f89-11d3-9a0c-0305e82c3301")
	if a != b || a < 0 || a >= readmodel.StatusShards {
		t.Fatalf("shards %d %d", a, b)
	}
}

func TestTableNameAndPageSize(t *testing.T) {
	if got := readmodel.TableName("order_read_model", 1); got != "order_read_model" {
		t.Fatal(got)
	}
	if got := readmodel.TableName("order_read_model", 3); got != "order_read_model_v3" {
		t.Fatal(got)
	}
	for in, want := range map[int]int{0: readmodel.DefaultPageSize, -1: readmodel.DefaultPageSize, 7: 7, 10000: readmodel.MaxPageSize} {
		if got := readmodel.ClampPageSize(in); got != want {
			t.Errorf("ClampPageSize(%d) = %d, want %d", in, got, want)
		}
	}
	if readmodel.FullName(" Ada ", "Lovelace") != "Ada Lovelace" || readmodel.FullName("Ada", "") != "Ada" {
		t.Fatal("FullName")
	}
}

// TestEveryProjectionTableIsMadeByTheMigrations: CreateTables makes a rebuild's tables from the
// statements that create version 1 in the migrations, so each table of each projection has one.
func TestEveryProjectionTableIsMadeByTheMigrations(t *testing.T) {
	for _, p := range readmodel.Projections() {
		tables, err := readmodel.ProjectionTables(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, base := range tables {
			name := readmodel.TableName(base, 2)
			stmt, err := cql.CreateTableStatement(base, name)
			if err != nil {
				t.Fatalf("projection %s: %v", p, err)
			}
			if want := "CREATE TABLE IF NOT EXISTS " + name + " ("; !strings.HasPrefix(stmt, want) || strings.Contains(stmt, base+" ") {
				t.Errorf("statement for %s: %q, want it to start with %q and not name %s", name, stmt, want, base)
			}
		}
	}
}
