package readmodel

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql"
)

// The projections: each is a set of tables built from the events of some topics, versioned and
// rebuilt as a whole.
const (
	// ProjectionOrders holds order_read_model, orders_by_customer, orders_by_status and
	// customer_contacts.
	ProjectionOrders = "orders"
	// ProjectionCustomers holds customer_read_model.
	ProjectionCustomers = "customers"
)

// Base names of the read-model tables (version 1; version N ≥ 2 appends "_v<N>").
const (
	// TableOrderReadModel holds one row per order.
	TableOrderReadModel = "order_read_model"
	// TableOrdersByCustomer holds a customer's orders, newest first.
	TableOrdersByCustomer = "orders_by_customer"
	// TableOrdersByStatus holds the orders per status and shard, newest first.
	TableOrdersByStatus = "orders_by_status"
	// TableCustomerContacts holds the customer details copied into orders.
	TableCustomerContacts = "customer_contacts"
	// TableCustomerReadModel holds one row per customer.
	TableCustomerReadModel = "customer_read_model"
	// TableProjectionVersions says which version of each projection is active.
	TableProjectionVersions = "projection_versions"
)

// StatusShards is the number of partitions each status of orders_by_status is spread over.
// Writers and readers must agree on it, so it is a constant of the schema.
const StatusShards = 8

// StatusShard returns the orders_by_status shard of an order: FNV-32a of the order id (lower
// case) modulo StatusShards.
func StatusShard(orderID string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(strings.ToLower(orderID)))
	return int(h.Sum32() % StatusShards)
}

// Projections returns the names of every projection.
func Projections() []string { return []string{ProjectionOrders, ProjectionCustomers} }

// ProjectionTables returns the base names of a projection's tables.
func ProjectionTables(projection string) ([]string, error) {
	switch projection {
	case ProjectionOrders:
		return []string{TableOrderReadModel, TableOrdersByCustomer, TableOrdersByStatus, TableCustomerContacts}, nil
	case ProjectionCustomers:
		return []string{TableCustomerReadModel}, nil
	default:
		return nil, fmt.Errorf("unknown projection %q (want %q or %q)", projection, ProjectionOrders, ProjectionCustomers)
	}
}

// TableName returns the name of version v of a table: the base name for version 1 (created by
// the migrations), base + "_v<N>" above.
func TableName(base string, version int) string {
	if version <= 1 {
		return base
	}
	return fmt.Sprintf("%s_v%d", base, version)
}

// CreateTables creates version v of a projection's tables (if they do not exist yet) and waits
// for the cluster to agree on the schema. Every version is made by the statements that create
// version 1 in the migrations (pkg/cql/migrations/common/0003_read_models.up.cql), under its own
// name, so all versions have the same columns, key and options. Version 1 comes from the
// migrations; CreateTables accepts it too, as a no-op on a migrated keyspace.
func CreateTables(ctx context.Context, s *gocql.Session, projection string, v int) error {
	if v < 1 {
		return fmt.Errorf("create tables of %s: version %d, want ≥ 1", projection, v)
	}
	tables, err := ProjectionTables(projection)
	if err != nil {
		return err
	}
	for _, base := range tables {
		name := TableName(base, v)
		stmt, err := cql.CreateTableStatement(base, name)
		if err != nil {
			return fmt.Errorf("create tables of %s v%d: %w", projection, v, err)
		}
		if err := execDDL(ctx, s, stmt); err != nil {
			return fmt.Errorf("create table %s: %w", name, err)
		}
	}
	if err := s.AwaitSchemaAgreement(ctx); err != nil {
		return fmt.Errorf("create tables of %s v%d: schema agreement: %w", projection, v, err)
	}
	return nil
}

// ddlRetryTime bounds the retries of one schema statement.
const ddlRetryTime = 2 * time.Minute

// execDDL runs an idempotent schema statement (CREATE … IF NOT EXISTS, DROP … IF EXISTS), again while it times out
// or its connection fails. A schema change waits for the cluster to agree and may flush tables,
// so on a loaded node it can outlast the session's request timeout and still be applied; the
// retry then finds the table there (found under CI load: a rebuild's CREATE TABLE timed out and
// the rebuild failed with Unavailable).
func execDDL(ctx context.Context, s *gocql.Session, stmt string) error {
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := s.Query(stmt).WithContext(ctx).Exec()
		if err != nil && !transient(ctx, err) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(backoff.NewExponentialBackOff()), backoff.WithMaxElapsedTime(ddlRetryTime))
	return err
}

// transient reports whether err from a call made with ctx is a failure to reach the store or get
// its answer (cql.Unreachable) rather than a refusal of the statement; gocql also reports a
// connection closed under a call as a context error of its own while ctx is live.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	return cql.Unreachable(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
