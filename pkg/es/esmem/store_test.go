package esmem_test

import (
	"testing"

	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/es/esmem"
	"github.com/ordersys/ordersys/pkg/es/estest"
)

// TestAcceptance runs the es.EventStore acceptance suite against the in-memory store.
func TestAcceptance(t *testing.T) {
	estest.AcceptanceTest(t, func(_ *testing.T, reg *es.Registry) es.EventStore { return esmem.New(reg) })
}
