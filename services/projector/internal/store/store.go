// Package store is the projector's CQL side: the app.VersionStore and app.Tables ports on a
// gocql session, through pkg/readmodel (projection_versions and the read-model tables of each
// version).
package store

import (
	"context"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/services/projector/internal/app"
)

// ReadModels implements app.VersionStore and app.Tables with pkg/readmodel on a session.
type ReadModels struct {
	s *gocql.Session
}

var (
	_ app.VersionStore = ReadModels{}
	_ app.Tables       = ReadModels{}
)

// New returns the read models on s (a session on the ordersys keyspace).
func New(s *gocql.Session) ReadModels { return ReadModels{s: s} }

// Orders returns version v of the orders projection's tables.
func (r ReadModels) Orders(v int) app.OrderRows { return readmodel.NewOrderTables(r.s, v) }

// Customers returns version v of the customers projection's tables.
func (r ReadModels) Customers(v int) app.CustomerRows { return readmodel.NewCustomerTables(r.s, v) }

// Load returns the versions of a projection (readmodel.LoadVersions).
func (r ReadModels) Load(ctx context.Context, projection string) (readmodel.Versions, error) {
	return readmodel.LoadVersions(ctx, r.s, projection)
}

// BeginRebuild allocates or resumes the version a rebuild fills (readmodel.BeginRebuildPrepared).
func (r ReadModels) BeginRebuild(ctx context.Context, projection string, prepare func(ctx context.Context, version int) error) (int, bool, error) {
	return readmodel.BeginRebuildPrepared(ctx, r.s, projection, prepare)
}

// Switch makes the version being built active (readmodel.Switch).
func (r ReadModels) Switch(ctx context.Context, projection string, building int) error {
	return readmodel.Switch(ctx, r.s, projection, building)
}

// AbortRebuild forgets the version being built (readmodel.AbortRebuild).
func (r ReadModels) AbortRebuild(ctx context.Context, projection string, building int) error {
	return readmodel.AbortRebuild(ctx, r.s, projection, building)
}

// SwitchBack makes the previous version active again (readmodel.SwitchBack).
func (r ReadModels) SwitchBack(ctx context.Context, projection string, current time.Duration) (readmodel.Versions, error) {
	return readmodel.SwitchBack(ctx, r.s, projection, current)
}

// DropVersion drops the tables of an unused version (readmodel.DropVersion).
func (r ReadModels) DropVersion(ctx context.Context, projection string, version int, retired time.Duration) ([]string, error) {
	return readmodel.DropVersion(ctx, r.s, projection, version, retired)
}
