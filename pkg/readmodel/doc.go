// Package readmodel is the shared access layer of the ordersys read models: the row types, the
// CQL reads and writes of the read-model tables, page tokens, the status shard function, and the
// versioning that lets a projection be rebuilt into fresh tables while readers keep working.
//
// The projector writes through OrderTables and CustomerTables (one value per table version);
// the query service reads through Store, which resolves the active version of each projection
// from the projection_versions table (cached briefly) and delegates to the tables of that version.
//
// Two projections exist:
//
//   - "orders" (ProjectionOrders): order_read_model, orders_by_customer, orders_by_status and
//     customer_contacts, built from the order-events and customer-events topics;
//   - "customers" (ProjectionCustomers): customer_read_model, built from customer-events.
//
// Version 1 of every table is created by the CQL migrations under its plain name; version N ≥ 2
// is created by CreateTables under <name>_v<N> with the same columns (see docs/read-models.md).
package readmodel
