package cql_test

import (
	"context"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/es/estest"
)

// TestEventStoreAcceptance runs the es.EventStore acceptance suite against the real Cassandra.
// Every subtest uses fresh aggregate ids, so their stores share one migrated keyspace.
func TestEventStoreAcceptance(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	estest.AcceptanceTest(t, func(t *testing.T, reg *es.Registry) es.EventStore {
		st := cql.NewEventStore(s, reg, cql.Options{PageSize: 256})
		t.Cleanup(func() {
			c, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := st.Close(c); err != nil {
				t.Errorf("close the event store: %v", err)
			}
		})
		return st
	})
}
