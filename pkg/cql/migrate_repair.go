package cql

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/gocql/gocql"
)

// createTable finds the table a migration statement creates (every table of the migrations is
// created with IF NOT EXISTS, so running it again is harmless); alterTable one it changes
// (ScyllaDB's CDC on the outbox), which is run again after the table is made again.
var (
	createTable = regexp.MustCompile(`(?is)CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+([a-z_][a-z0-9_]*)`)
	alterTable  = regexp.MustCompile(`(?is)ALTER\s+TABLE\s+([a-z_][a-z0-9_]*)`)
)

// migrationTable is a table a migration creates (or, alter set, changes), with the statement.
type migrationTable struct {
	file, table, stmt string
	alter             bool
}

// migrationTables returns the tables created by the migrations of src up to version (by their
// number, the prefix of the file name), in file order.
func migrationTables(src fs.FS, version uint) ([]migrationTable, error) {
	entries, err := fs.ReadDir(src, ".")
	if err != nil {
		return nil, err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	var out []migrationTable
	for _, e := range entries {
		name := e.Name()
		num, _, _ := strings.Cut(name, "_")
		n, err := strconv.ParseUint(num, 10, 32)
		if err != nil || !strings.HasSuffix(name, ".up.cql") || uint(n) > version {
			continue
		}
		b, err := fs.ReadFile(src, name)
		if err != nil {
			return nil, err
		}
		for _, stmt := range strings.Split(string(b), ";") {
			if m := createTable.FindStringSubmatch(stmt); m != nil {
				out = append(out, migrationTable{file: name, table: m[1], stmt: strings.TrimSpace(stmt)})
			} else if m := alterTable.FindStringSubmatch(stmt); m != nil {
				out = append(out, migrationTable{file: name, table: m[1], stmt: strings.TrimSpace(stmt), alter: true})
			}
		}
	}
	return out, nil
}

// repairMissingTables creates again the tables of the migrations up to version that the keyspace
// lacks although its recorded schema version says they were made (a table dropped by hand, or a
// keyspace whose migrations were numbered differently when it was made): without it every call
// on such a table fails at run time, far from the cause. It logs each table it creates and
// returns their names.
func repairMissingTables(ctx context.Context, s *gocql.Session, ks string, src fs.FS, version uint, log *slog.Logger) ([]string, error) {
	tables, err := migrationTables(src, version)
	if err != nil {
		return nil, fmt.Errorf("migrate: read migrations: %w", err)
	}
	have := map[string]bool{}
	iter := s.Query(`SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?`, ks).WithContext(ctx).Iter()
	var name string
	for iter.Scan(&name) {
		have[name] = true
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("migrate: list the tables of %s: %w", ks, err)
	}
	var made []string
	remade := map[string]bool{}
	for _, t := range tables {
		if t.alter {
			if remade[t.table] {
				log.Warn("changing the table made again as its migration did", "keyspace", ks, "table", t.table, "migration", t.file)
				if err := s.Query(t.stmt).WithContext(ctx).Exec(); err != nil {
					return made, fmt.Errorf("migrate: change table %s made again (migration %s): %w", t.table, t.file, err)
				}
			}
			continue
		}
		if have[t.table] {
			continue
		}
		log.Warn("table missing although its migration is recorded: creating it again", "keyspace", ks, "table", t.table, "migration", t.file, "version", version)
		if err := s.Query(t.stmt).WithContext(ctx).Exec(); err != nil {
			return made, fmt.Errorf("migrate: create missing table %s (migration %s): %w", t.table, t.file, err)
		}
		have[t.table], remade[t.table] = true, true
		made = append(made, t.table)
	}
	if len(made) > 0 {
		if err := s.AwaitSchemaAgreement(ctx); err != nil {
			return made, fmt.Errorf("migrate: schema agreement after creating %v: %w", made, err)
		}
	}
	return made, nil
}

// portableTables are the tables the portable profile's migrations create or alter, read from
// the embedded files once.
var portableTables = sync.OnceValues(func() ([]migrationTable, error) {
	src, err := migrationSource(ProfilePortable)
	if err != nil {
		return nil, err
	}
	tables, err := migrationTables(src, ^uint(0))
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	return tables, nil
})

// tableName is what CreateTableStatement accepts as the name of the table to create.
var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// CreateTableStatement returns the statement with which the migrations create table (CREATE
// TABLE IF NOT EXISTS with its columns, key and options, as the migration file spells them),
// naming the table as instead: the one definition of a table whose copies are made at run time
// (the read-model tables <table>_v<N> of a projection rebuild, pkg/readmodel).
func CreateTableStatement(table, as string) (string, error) {
	if !tableName.MatchString(as) {
		return "", fmt.Errorf("create table %s as %q: not a lower-case table name", table, as)
	}
	tables, err := portableTables()
	if err != nil {
		return "", err
	}
	stmt := ""
	for _, t := range tables {
		switch {
		case t.table != table:
		case t.alter:
			// A copy made from the CREATE statement alone would miss the change.
			return "", fmt.Errorf("table %s is changed by migration %s after it is created: copies of it cannot be made from its CREATE statement", table, t.file)
		default:
			loc := createTable.FindStringSubmatchIndex(t.stmt) // [whole, name] start and end offsets
			stmt = t.stmt[loc[0]:loc[2]] + as + t.stmt[loc[3]:]
		}
	}
	if stmt == "" {
		return "", fmt.Errorf("no migration creates table %s", table)
	}
	return stmt, nil
}
