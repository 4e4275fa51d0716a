package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/services/projector/internal/app"
)

// memVersions is an in-memory app.VersionStore holding one projection's versions.
type memVersions struct {
	v        readmodel.Versions
	abortErr error
	aborted  int
}

func (m *memVersions) Load(context.Context, string) (readmodel.Versions, error) { return m.v, nil }
func (m *memVersions) BeginRebuild(context.Context, string, func(context.Context, int) error) (int, bool, error) {
	return 0, false, errors.New("not supported")
}
func (m *memVersions) Switch(context.Context, string, int) error { return errors.New("not supported") }
func (m *memVersions) AbortRebuild(_ context.Context, _ string, v int) error {
	if m.abortErr != nil {
		return m.abortErr
	}
	m.aborted = v
	return nil
}
func (m *memVersions) SwitchBack(context.Context, string, time.Duration) (readmodel.Versions, error) {
	return readmodel.Versions{}, readmodel.ErrUnsafe
}
func (m *memVersions) DropVersion(context.Context, string, int, time.Duration) ([]string, error) {
	return nil, errors.New("store down")
}

// TestAdminUseCases runs the admin use cases on an in-memory version store: the checks of the
// arguments and the mapping of the store's errors.
func TestAdminUseCases(t *testing.T) {
	ctx := context.Background()
	var rule *es.RuleError

	idle := &memVersions{v: readmodel.Versions{Projection: readmodel.ProjectionOrders, Active: 1}}
	if _, err := app.NewAdmin(idle).AbortRebuild(ctx, "nope"); !errors.Is(err, es.ErrInvalidArgument) {
		t.Errorf("unknown projection: %v", err)
	}
	if _, err := app.NewAdmin(idle).AbortRebuild(ctx, readmodel.ProjectionOrders); !errors.As(err, &rule) || rule.Rule != "projector.rebuild_running" {
		t.Errorf("abort without a rebuild: %v", err)
	}

	building := &memVersions{v: readmodel.Versions{Projection: readmodel.ProjectionOrders, Active: 1, Building: 2}}
	if v, err := app.NewAdmin(building).AbortRebuild(ctx, " "+readmodel.ProjectionOrders+" "); err != nil || v != 2 || building.aborted != 2 {
		t.Errorf("abort: %d, %v (aborted %d)", v, err, building.aborted)
	}
	building.abortErr = readmodel.ErrRebuildConflict
	if _, err := app.NewAdmin(building).AbortRebuild(ctx, readmodel.ProjectionOrders); !errors.As(err, &rule) || rule.Rule != "projector.rebuild_unchanged" {
		t.Errorf("abort in a conflict: %v", err)
	}

	if _, err := app.NewAdmin(idle).SwitchBack(ctx, readmodel.ProjectionOrders); !errors.As(err, &rule) || rule.Rule != "projector.switch_back_safe" {
		t.Errorf("unsafe switch back: %v", err)
	}
	if _, err := app.NewAdmin(idle).DropVersion(ctx, readmodel.ProjectionOrders, 0); !errors.Is(err, es.ErrInvalidArgument) {
		t.Errorf("drop version 0: %v", err)
	}
	if _, err := app.NewAdmin(idle).DropVersion(ctx, readmodel.ProjectionOrders, 1); !errors.Is(err, es.ErrUnavailable) {
		t.Errorf("drop on a store that fails: %v", err)
	}
	if _, err := app.NewAdmin(idle).StartRebuild(readmodel.ProjectionOrders, app.SourceTopics); !errors.As(err, &rule) || rule.Rule != "projector.rebuilds_served" {
		t.Errorf("start without rebuilds: %v", err)
	}
	for _, name := range []string{"no-such-projection", ""} {
		if _, err := app.NewAdmin(idle).StartRebuild(name, app.SourceTopics); !errors.Is(err, es.ErrInvalidArgument) {
			t.Errorf("start a rebuild of %q: %v, want an invalid argument", name, err)
		}
	}
	sts, err := app.NewAdmin(idle).Status(ctx)
	if err != nil || len(sts) != len(readmodel.Projections()) || sts[0].ActiveProgress != nil {
		t.Errorf("status: %+v, %v", sts, err)
	}
}
