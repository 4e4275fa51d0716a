// Package storage adapts the shared CQL adapters of pkg/cql to the ports of the command
// service's use-case layer.
package storage

import (
	"context"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/services/command/internal/app"
)

// RejectionLog implements app.RejectionLog on the command_rejections table.
type RejectionLog struct {
	rejections *cql.Rejections
}

var _ app.RejectionLog = RejectionLog{}

// NewRejectionLog returns the log writing through r.
func NewRejectionLog(r *cql.Rejections) RejectionLog { return RejectionLog{rejections: r} }

// Remember records the rejection (rule id as code, reason as message).
func (l RejectionLog) Remember(ctx context.Context, aggregateID, commandID string, r app.Rejection) error {
	return l.rejections.Save(ctx, cql.Rejection{
		AggregateID: aggregateID, CommandID: commandID, Fingerprint: r.Fingerprint, Code: r.Rule, Message: r.Reason,
		Version: r.Version, Forget: r.Forget,
	})
}

// Recall returns the recorded rejection, if any.
func (l RejectionLog) Recall(ctx context.Context, aggregateID, commandID string) (app.Rejection, bool, error) {
	rej, found, err := l.rejections.Find(ctx, aggregateID, commandID)
	if err != nil || !found {
		return app.Rejection{}, false, err
	}
	return app.Rejection{Fingerprint: rej.Fingerprint, Rule: rej.Code, Reason: rej.Message}, true, nil
}
