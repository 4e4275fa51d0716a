package cql_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
)

// LoadRaw returns exactly the asked range, payloads as stored and undecoded (the relay forwards
// bytes); LoadRange decodes the same range.
func TestLoadRawReturnsStoredBytesOfARange(t *testing.T) {
	s, _ := cqltest.Keyspace(t)
	st := cql.NewEventStore(s, codec.NewRegistry(), cql.Options{PageSize: 2})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := uuid.NewString()
	req := faultRequest(id, 0, newIDs(2))
	if _, err := st.Append(ctx, req); err != nil {
		t.Fatal(err)
	}
	req2 := faultRequest(id, 2, newIDs(2))
	if _, err := st.Append(ctx, req2); err != nil {
		t.Fatal(err)
	}
	stored := append(req.Events, req2.Events...)

	raw, err := st.LoadRaw(ctx, id, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 2 || raw[0].Sequence != 2 || raw[1].Sequence != 3 {
		t.Fatalf("LoadRaw(2,3) returned %d events", len(raw))
	}
	for i, e := range raw {
		want := stored[i+1]
		if e.Event != nil || !bytes.Equal(e.Payload, want.Payload) || e.EventID != want.EventID || e.EventType != want.EventType ||
			e.SchemaVersion != want.SchemaVersion || e.CorrelationID != want.CorrelationID || e.AggregateType != want.AggregateType {
			t.Errorf("raw event %d differs from what was stored: %+v", i, e)
		}
	}
	if none, err := st.LoadRaw(ctx, id, 3, 2); err != nil || len(none) != 0 {
		t.Fatalf("empty range: %d events, %v", len(none), err)
	}
	dec, err := st.LoadRange(ctx, id, 2, 4)
	if err != nil || len(dec) != 3 || dec[2].Sequence != 4 || dec[0].Event == nil {
		t.Fatalf("LoadRange(2,4): %d events, %v", len(dec), err)
	}
}
