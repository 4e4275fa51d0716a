// Package cql holds the ordersys adapters for CQL stores (Apache Cassandra and ScyllaDB through
// gocql): the session, versioned schema migrations, the event store with optimistic concurrency,
// the outbox protocol and its recovery sweeper, and LWT leases. Only portable CQL is used, except
// in the migrations of the ScyllaDB profile.
package cql
