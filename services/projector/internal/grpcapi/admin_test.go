package grpcapi_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/services/projector/internal/grpcapi"
)

// TestDeadLetterTopics: a request's topic maps to the projector's dead-letter topics; the
// relay's are refused as invalid.
func TestDeadLetterTopics(t *testing.T) {
	for _, tc := range []struct {
		topic, want string
		invalid     bool
	}{
		{topic: "", want: "[order-events.projector.dlq customer-events.projector.dlq]"},
		{topic: "order-events", want: "[order-events.projector.dlq]"},
		{topic: "customer-events.projector.dlq", want: "[customer-events.projector.dlq]"},
		{topic: "order-events.dlq", invalid: true},
	} {
		got, err := grpcapi.DeadLetterTopics(tc.topic, "order-events", "customer-events")
		switch {
		case tc.invalid && !errors.Is(err, es.ErrInvalidArgument):
			t.Errorf("%q: got %v, %v; want an invalid argument", tc.topic, got, err)
		case !tc.invalid && (err != nil || fmt.Sprint(got) != tc.want):
			t.Errorf("%q: got %v, %v; want %s", tc.topic, got, err, tc.want)
		}
	}
}
