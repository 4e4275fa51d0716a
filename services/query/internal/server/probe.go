package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

// Probe returns the health probe of the query service's dependencies: it reads the event
// store's head of the probe id and the customers read model through the active projection
// version (both must answer; a missing row is an answer).
func Probe(store es.EventStore, rm *readmodel.Store) func(context.Context) error {
	return func(ctx context.Context) error {
		if _, err := store.Head(ctx, ids.Probe); err != nil {
			return fmt.Errorf("event store: %w", err)
		}
		if _, err := rm.GetCustomer(ctx, ids.Probe); err != nil && !errors.Is(err, es.ErrNotFound) {
			return fmt.Errorf("read model: %w", err)
		}
		return nil
	}
}
