package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/es"
)

// CustomersHandler builds one version of the customers projection (customer_read_model) by
// applying Customer events to the Customer aggregate restored from its row.
type CustomersHandler struct {
	tables CustomerRows
	heal   healer
}

// NewCustomersHandler returns the handler writing tables, healing gaps from src.
func NewCustomersHandler(tables CustomerRows, src EventSource) *CustomersHandler {
	return &CustomersHandler{tables: tables, heal: defaultHealer(src)}
}

// Project applies a Customer event.
func (h *CustomersHandler) Project(ctx context.Context, env es.Envelope) (Result, error) {
	return h.ProjectStream(ctx, []es.Envelope{env})
}

// ProjectStream applies consecutive events of one Customer.
func (h *CustomersHandler) ProjectStream(ctx context.Context, envs []es.Envelope) (Result, error) {
	if len(envs) == 0 {
		return Result{Duplicate: true}, nil
	}
	env := envs[len(envs)-1]
	if env.AggregateType != customer.AggregateType {
		return Result{}, Poison(ReasonForeignAggregate, fmt.Errorf("%s: the customers projection holds Customer events", env))
	}
	state, err := h.tables.Get(ctx, env.AggregateID)
	switch {
	case err == nil:
	case errors.Is(err, es.ErrNotFound):
		state = customer.New(env.AggregateID)
	case errors.Is(err, es.ErrInvalidArgument):
		return Result{}, Poison(ReasonUnappliable, fmt.Errorf("%s: %w", env, err))
	default:
		return Result{}, err
	}
	events, healed, dup, err := h.heal.planStream(ctx, state.Version(), envs)
	if err != nil {
		return Result{}, err
	}
	if dup {
		return Result{Duplicate: true}, nil
	}
	types, err := applyAll(state, events, nil)
	if err != nil {
		return Result{}, err
	}
	if err := h.tables.Save(ctx, state); err != nil {
		return Result{}, err
	}
	return Result{Healed: healed, Applied: types}, nil
}
