// Package codectest holds test helpers built on the real codecs.
package codectest

import (
	"context"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
)

// ReplayedOrder returns the order id rebuilt from its events up to version, read back from st.
func ReplayedOrder(ctx context.Context, t testing.TB, st es.EventStore, id string, version int64) *order.Order {
	t.Helper()
	envs, err := st.LoadRange(ctx, id, 1, version)
	if err != nil {
		t.Fatal(err)
	}
	o := order.New(id)
	if err := es.Replay(o, envs); err != nil {
		t.Fatal(err)
	}
	if o.Version() != version {
		t.Fatalf("order %s replayed to version %d, want %d", id, o.Version(), version)
	}
	return o
}

// SaveOrderSnapshot stores a snapshot of the order id at version, taken with the real codec
// from its events replayed up to there.
func SaveOrderSnapshot(ctx context.Context, t testing.TB, st es.EventStore, id string, version int64) {
	t.Helper()
	state, err := codec.OrderSnapshotCodec{}.Take(ReplayedOrder(ctx, t, st, id, version))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SaveSnapshot(ctx, es.Snapshot{AggregateID: id, AggregateType: order.AggregateType, Version: version,
		SchemaVersion: codec.SnapshotSchemaVersion, State: state, TakenAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
}
