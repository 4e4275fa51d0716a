package cql_test

import (
	"testing"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/es/estest"
)

// TestEventStoreAcceptance runs the es.EventStore acceptance suite against the real Cassandra.
// Every subtest uses fresh aggregate ids, so they share one migrated keyspace.
func TestEventStoreAcceptance(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	st := cql.NewEventStore(s, codec.NewRegistry(), cql.Options{PageSize: 256})
	estest.AcceptanceTest(t, func(*testing.T) es.EventStore { return st })
}
