package readmodel

import (
	"context"
	"fmt"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/es"
)

// Write timestamps.
//
// Every read-model write carries a CQL write timestamp (USING TIMESTAMP) derived from the
// version it writes instead of the wall clock, so that the outcome of two writes of one row does
// not depend on the order in which they land: a projector that lost its partition in a
// rebalance and finishes a write late (version 6 after version 7) loses to the newer cells and
// to the newer deletes. Cassandra and ScyllaDB resolve every cell, and every row against a row
// deletion, by the highest timestamp, with no read and no lightweight transaction.
//
// Two ranges, so that a row deletion always covers the customer details:
//
//	aggregate columns, row liveness, row deletions   versionTimestamp(v) = v << 32   (≥ 2^32)
//	customer details copied into an order row        detailTimestamp(cv) = cv + 1    (< 2^32)
//
// The timestamps are small numbers, far below any wall-clock timestamp: a row once written
// without USING TIMESTAMP (by a release before this one) would win against every later write.
// Tables written by such a release must be rebuilt (projector rebuild), see docs/read-models.md.

// maxVersion bounds the versions whose timestamps keep their order (v << 32 must not overflow).
const maxVersion = 1<<31 - 1

// maxDetailVersion bounds the customer versions whose timestamps stay below versionTimestamp(1).
const maxDetailVersion = 1<<32 - 2

// versionTimestamp returns the write timestamp of a row at aggregate version v (v ≥ 1).
func versionTimestamp(v int64) (int64, error) {
	if v < 1 || v > maxVersion {
		return 0, fmt.Errorf("%w: version %d outside 1..%d", es.ErrInvalidArgument, v, maxVersion)
	}
	return v << 32, nil
}

// detailTimestamp returns the write timestamp of the customer details of version cv (cv ≥ 0,
// 0 = unknown) in an order row; it is below every versionTimestamp.
func detailTimestamp(cv int64) (int64, error) {
	if cv < 0 || cv > maxDetailVersion {
		return 0, fmt.Errorf("%w: customer version %d outside 0..%d", es.ErrInvalidArgument, cv, maxDetailVersion)
	}
	return cv + 1, nil
}

// legacySample is how many rows LegacyWrites looks at.
const legacySample = 100

// LegacyWrites reports whether rows of the projection's active version were written without
// USING TIMESTAMP, by the first release: their wall-clock write timestamps are far above every
// version-derived one, so this release's writes never replace them and those rows stay as they
// were until the projection is rebuilt (docs/deploy.md). It samples the first rows of the
// projection's main table: a version-derived timestamp is either below 2^32 or a multiple of it.
func LegacyWrites(ctx context.Context, s *gocql.Session, projection string) (bool, error) {
	v, err := LoadVersions(ctx, s, projection)
	if err != nil {
		return false, err
	}
	tables, err := ProjectionTables(projection)
	if err != nil {
		return false, err
	}
	iter := s.Query(`SELECT writetime(version) FROM `+TableName(tables[0], v.Active)+` LIMIT ?`, legacySample).WithContext(ctx).Iter()
	var ts int64
	legacy := false
	for iter.Scan(&ts) {
		if ts >= 1<<32 && ts&(1<<32-1) != 0 {
			legacy = true
		}
	}
	if err := iter.Close(); err != nil {
		return false, fmt.Errorf("sample the write times of %s: %w", projection, err)
	}
	return legacy, nil
}
