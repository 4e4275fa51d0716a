package es

import (
	"context"
	"fmt"
)

// PrepareAppend checks an append request as every EventStore does before it writes anything,
// and encodes with reg the payload of every event that has none: at least one event, an
// expected version of at least 0, every event of the request's aggregate at the sequences
// that follow the expected version, and none that the relay or the projector would refuse
// (Envelope.Check).
func PrepareAppend(ctx context.Context, reg *Registry, req *AppendRequest) error {
	if len(req.Events) == 0 {
		return fmt.Errorf("append to %s: no events", req.AggregateID)
	}
	if req.ExpectedVersion < 0 {
		return fmt.Errorf("append to %s: negative expected version %d", req.AggregateID, req.ExpectedVersion)
	}
	for i := range req.Events {
		e := &req.Events[i]
		if e.AggregateID != req.AggregateID || e.AggregateType != req.AggregateType {
			return fmt.Errorf("append to %s: event %d belongs to %s %s", req.AggregateID, i, e.AggregateType, e.AggregateID)
		}
		if want := req.ExpectedVersion + int64(i) + 1; e.Sequence != want {
			return fmt.Errorf("append to %s: event %d has sequence %d, want %d", req.AggregateID, i, e.Sequence, want)
		}
		if e.Payload == nil {
			if err := reg.EncodeEnvelopeContext(ctx, e); err != nil {
				return fmt.Errorf("append to %s: %w", req.AggregateID, err)
			}
		}
		if err := e.Check(); err != nil {
			return fmt.Errorf("append to %s: event %d: %w", req.AggregateID, i, err)
		}
	}
	return nil
}
