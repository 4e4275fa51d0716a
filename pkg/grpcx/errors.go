package grpcx

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/ordersys/ordersys/pkg/es"
)

// InternalMessage is the message of every Internal status ToStatus makes; the cause is logged by
// the interceptors, never sent to the client.
const InternalMessage = "internal error"

// ToStatus maps err to a gRPC status error, once, at the transport edge:
//
//   - nil → nil; an error that already is (or wraps) a gRPC status → that status
//   - context.Canceled → Canceled; context.DeadlineExceeded → DeadlineExceeded
//   - es.ErrInvalidArgument → InvalidArgument with google.rpc.BadRequest details, one field
//     violation per es.FieldViolation of a *es.ValidationError
//   - es.ErrCommandIDReused → InvalidArgument with a BadRequest violation on command_id
//   - es.ErrRuleViolation → FailedPrecondition whose message is the reason, with
//     google.rpc.PreconditionFailure details (type = rule id, description = reason)
//   - es.ErrConcurrencyConflict → Aborted (the message names expected and actual versions)
//   - es.ErrNotFound → NotFound; es.ErrAlreadyExists → AlreadyExists;
//     es.ErrUnavailable → Unavailable
//   - anything else → Internal with the generic InternalMessage
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if s, ok := status.FromError(err); ok {
		return s.Err()
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, es.ErrCommandIDReused):
		return withDetails(codes.InvalidArgument, err.Error(), &errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{
				Field:       "command_id",
				Description: "command id already used for a different command",
			}},
		})
	case errors.Is(err, es.ErrInvalidArgument):
		var ve *es.ValidationError
		if !errors.As(err, &ve) {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		br := &errdetails.BadRequest{}
		for _, v := range ve.Violations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field: v.Field, Description: v.Reason,
			})
		}
		return withDetails(codes.InvalidArgument, err.Error(), br)
	case errors.Is(err, es.ErrRuleViolation):
		var re *es.RuleError
		if !errors.As(err, &re) {
			return status.Error(codes.FailedPrecondition, err.Error())
		}
		return withDetails(codes.FailedPrecondition, re.Reason, &errdetails.PreconditionFailure{
			Violations: []*errdetails.PreconditionFailure_Violation{{Type: re.Rule, Subject: re.Subject, Description: re.Reason}},
		})
	case errors.Is(err, es.ErrConcurrencyConflict):
		var ce *es.ConflictError
		if errors.As(err, &ce) {
			return status.Error(codes.Aborted, ce.Error())
		}
		return status.Error(codes.Aborted, err.Error())
	case errors.Is(err, es.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, es.ErrAlreadyExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, es.ErrUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	default:
		return status.Error(codes.Internal, InternalMessage)
	}
}

func withDetails(c codes.Code, msg string, details ...protoadapt.MessageV1) error {
	s := status.New(c, msg)
	if d, err := s.WithDetails(details...); err == nil {
		s = d
	}
	return s.Err()
}

// ErrorInterceptor returns a unary server interceptor that maps handler errors with ToStatus.
// Causes of Internal and Unknown results are logged at error level, of Unavailable at warn.
func ErrorInterceptor(logger *slog.Logger) grpc.UnaryServerInterceptor {
	logger = orDefault(logger)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err != nil {
			err = mapAndLog(ctx, logger, info.FullMethod, err)
		}
		return resp, err
	}
}

// StreamErrorInterceptor is ErrorInterceptor for streaming RPCs.
func StreamErrorInterceptor(logger *slog.Logger) grpc.StreamServerInterceptor {
	logger = orDefault(logger)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		err := handler(srv, ss)
		if err != nil {
			err = mapAndLog(ss.Context(), logger, info.FullMethod, err)
		}
		return err
	}
}

func mapAndLog(ctx context.Context, logger *slog.Logger, method string, err error) error {
	st := ToStatus(err)
	switch status.Code(st) {
	case codes.Internal, codes.Unknown:
		logger.ErrorContext(ctx, "grpc request failed", "method", method, "code", status.Code(st).String(), "err", err)
	case codes.Unavailable:
		logger.WarnContext(ctx, "grpc request failed", "method", method, "code", status.Code(st).String(), "err", err)
	}
	return st
}

func orDefault(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
