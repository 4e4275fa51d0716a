package app

import (
	"context"
	"time"

	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

// VersionStore reads and changes the table versions of the projections (projection_versions;
// internal/store implements it on pkg/readmodel).
type VersionStore interface {
	// Load returns the versions of a projection.
	Load(ctx context.Context, projection string) (readmodel.Versions, error)
	// BeginRebuild allocates (or resumes) the version a rebuild fills, calling prepare before
	// a new one is recorded as building (readmodel.BeginRebuildPrepared).
	BeginRebuild(ctx context.Context, projection string, prepare func(ctx context.Context, version int) error) (version int, resumed bool, err error)
	// Switch makes the version being built active (readmodel.Switch).
	Switch(ctx context.Context, projection string, building int) error
	// AbortRebuild forgets the version being built (readmodel.AbortRebuild).
	AbortRebuild(ctx context.Context, projection string, building int) error
	// SwitchBack makes the previous version active again (readmodel.SwitchBack).
	SwitchBack(ctx context.Context, projection string, current time.Duration) (readmodel.Versions, error)
	// DropVersion drops the tables of an unused version (readmodel.DropVersion).
	DropVersion(ctx context.Context, projection string, version int, retired time.Duration) ([]string, error)
}

// Tables gives the read-model tables of one version of each projection.
type Tables interface {
	// Orders returns version v of the orders projection's tables.
	Orders(v int) OrderRows
	// Customers returns version v of the customers projection's tables.
	Customers(v int) CustomerRows
}

// OrderRows are the tables of one version of the orders projection (readmodel.OrderTables).
type OrderRows interface {
	// Get returns an order's row.
	Get(ctx context.Context, orderID string) (readmodel.Order, error)
	// Save writes an order's rows (prev: the row read before, nil for a new order).
	Save(ctx context.Context, prev *readmodel.Order, next readmodel.Order, passed ...order.Status) error
	// SetCustomer writes a customer's details into an order's rows.
	SetCustomer(ctx context.Context, o readmodel.Order, c readmodel.Contact) error
	// Contact returns a customer's contact row.
	Contact(ctx context.Context, customerID string) (readmodel.Contact, error)
	// SaveContact writes a customer's contact row.
	SaveContact(ctx context.Context, c readmodel.Contact) error
	// CustomerOrders calls fn with every order of the customer, pageSize at a time.
	CustomerOrders(ctx context.Context, customerID string, pageSize int, fn func(readmodel.Order) error) error
}

// CustomerRows are the tables of one version of the customers projection
// (readmodel.CustomerTables).
type CustomerRows interface {
	// Get restores a customer from its row.
	Get(ctx context.Context, customerID string) (*customer.Customer, error)
	// Save writes a customer's row.
	Save(ctx context.Context, c *customer.Customer) error
}

// ConsumerSpec is what one consumer group member consumes and builds.
type ConsumerSpec struct {
	// GroupID is the consumer group; each projection version has its own (GroupID).
	GroupID string
	// Topics are the topics consumed.
	Topics []string
	// Projection and Version name what is built.
	Projection string
	// Version is the table version written.
	Version int
	// Handler applies the events.
	Handler Handler
	// CommitInterval and StallAfter tune the consumer (0: its defaults).
	CommitInterval, StallAfter time.Duration
}

// Consumers runs consumer group members (internal/consumer).
type Consumers interface {
	// Run consumes as spec says until ctx ends, then commits what was processed, leaves the
	// group and returns nil; it returns an error only when the group cannot be used.
	Run(ctx context.Context, spec ConsumerSpec) error
}

// Groups reads and sets the offsets of consumer groups (internal/kafkaadmin).
type Groups interface {
	// Lag returns, for every partition of the topics, how far the group is behind.
	Lag(ctx context.Context, group string, topics []string) ([]PartitionLag, error)
	// OldestUnprocessed returns the record timestamp of the first message the group has not
	// processed on the partition (zero when it processed every one).
	OldestUnprocessed(ctx context.Context, p PartitionLag) (time.Time, error)
	// StartAtEnd commits, for a group without members, the end of every partition of the
	// topics.
	StartAtEnd(ctx context.Context, group string, topics []string) error
}

// AppliedCounter counts events applied to a read model
// (ordersys_projector_events_applied_total).
type AppliedCounter interface {
	// AddApplied counts one event of eventType applied to version of projection.
	AddApplied(projection string, version int, eventType string)
}

// PartitionLag is how far a consumer group is behind on one partition.
type PartitionLag struct {
	// Topic and Partition name the partition.
	Topic     string
	Partition int
	// Committed is the group's committed offset (-1 when it never committed one).
	Committed int64
	// End is the partition's high-water mark.
	End int64
	// Lag is the number of messages after the committed position (from the first retained
	// offset when nothing was committed).
	Lag int64
	// Leader is the address (host:port) of the partition's leader.
	Leader string
}

// TotalLag sums the lag of every partition.
func TotalLag(ls []PartitionLag) int64 {
	var n int64
	for _, l := range ls {
		n += l.Lag
	}
	return n
}
