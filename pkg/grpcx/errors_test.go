package grpcx_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/grpcx"
)

func TestToStatus(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		wantCode    codes.Code
		wantMsg     string // substring of the status message
		notInMsg    string // must not appear in the message
		wantDetails []protoadapt.MessageV1
	}{
		{name: "canceled", err: fmt.Errorf("load: %w", context.Canceled), wantCode: codes.Canceled},
		{name: "deadline", err: fmt.Errorf("load: %w", context.DeadlineExceeded), wantCode: codes.DeadlineExceeded},
		{
			name: "validation",
			err: fmt.Errorf("create order: %w", (&es.Violations{
				{Field: "customer_id", Reason: "must be a UUID"},
				{Field: "items[0].quantity", Reason: "must be greater than 0"},
			}).Err()),
			wantCode: codes.InvalidArgument, wantMsg: "items[0].quantity: must be greater than 0",
			wantDetails: []protoadapt.MessageV1{&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
				{Field: "customer_id", Description: "must be a UUID"},
				{Field: "items[0].quantity", Description: "must be greater than 0"},
			}}},
		},
		{name: "bare invalid argument", err: es.ErrInvalidArgument, wantCode: codes.InvalidArgument},
		{
			name:     "command id reused",
			err:      fmt.Errorf("dedup: %w", es.ErrCommandIDReused),
			wantCode: codes.InvalidArgument, wantMsg: "command id reused",
			wantDetails: []protoadapt.MessageV1{&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
				{Field: "command_id", Description: "command id already used for a different command"},
			}}},
		},
		{
			name:     "rule",
			err:      fmt.Errorf("ship order: %w", es.Rule("order.ship.requires_confirmed", "order is %s; only a CONFIRMED order can ship", "CREATED")),
			wantCode: codes.FailedPrecondition, wantMsg: "order is CREATED; only a CONFIRMED order can ship", notInMsg: "ship order:",
			wantDetails: []protoadapt.MessageV1{&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{
				{Type: "order.ship.requires_confirmed", Description: "order is CREATED; only a CONFIRMED order can ship"},
			}}},
		},
		{name: "bare rule", err: es.ErrRuleViolation, wantCode: codes.FailedPrecondition},
		{
			name:     "conflict",
			err:      fmt.Errorf("append: %w", &es.ConflictError{AggregateID: "a1", Expected: 3, Actual: 5}),
			wantCode: codes.Aborted, wantMsg: "expected version 3, actual 5",
		},
		{name: "bare conflict", err: es.ErrConcurrencyConflict, wantCode: codes.Aborted},
		{name: "not found", err: fmt.Errorf("order 42: %w", es.ErrNotFound), wantCode: codes.NotFound, wantMsg: "order 42"},
		{name: "already exists", err: es.ErrAlreadyExists, wantCode: codes.AlreadyExists},
		{name: "unavailable", err: fmt.Errorf("cql: %w", es.ErrUnavailable), wantCode: codes.Unavailable},
		{name: "status passes through", err: status.Error(codes.ResourceExhausted, "slow down"), wantCode: codes.ResourceExhausted, wantMsg: "slow down"},
		{name: "wrapped status", err: fmt.Errorf("call query: %w", status.Error(codes.NotFound, "nope")), wantCode: codes.NotFound, wantMsg: "nope"},
		{name: "unknown error is internal", err: errors.New("dial 10.0.0.7:9042: secret detail"), wantCode: codes.Internal, wantMsg: grpcx.InternalMessage, notInMsg: "10.0.0.7"},
		{name: "sequence gap is internal", err: es.ErrSequenceGap, wantCode: codes.Internal, notInMsg: "gap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := grpcx.ToStatus(tt.err)
			st, ok := status.FromError(got)
			if !ok {
				t.Fatalf("%v is not a status", got)
			}
			if st.Code() != tt.wantCode {
				t.Fatalf("code %v, want %v (%v)", st.Code(), tt.wantCode, st.Message())
			}
			if !strings.Contains(st.Message(), tt.wantMsg) {
				t.Errorf("message %q lacks %q", st.Message(), tt.wantMsg)
			}
			if tt.notInMsg != "" && strings.Contains(st.Message(), tt.notInMsg) {
				t.Errorf("message %q contains %q", st.Message(), tt.notInMsg)
			}
			details := st.Details()
			if len(details) != len(tt.wantDetails) {
				t.Fatalf("details %v, want %v", details, tt.wantDetails)
			}
			for i, d := range details {
				m, ok := d.(proto.Message)
				if !ok || !proto.Equal(m, protoadapt.MessageV2Of(tt.wantDetails[i])) {
					t.Errorf("detail %d = %v, want %v", i, d, tt.wantDetails[i])
				}
			}
		})
	}
	if grpcx.ToStatus(nil) != nil {
		t.Error("ToStatus(nil) != nil")
	}
}
