package deadletter

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// Limits of the requests (stated on the Rules lines of proto/orders/v1/relay_admin.proto).
const (
	// DefaultPage and MaxPage bound a ListDeadLetters page.
	DefaultPage, MaxPage = 100, 1000
	// MaxTopicLen is Kafka's limit on a topic name.
	MaxTopicLen = 249
)

// Server implements the dead-letter RPCs (ListDeadLetters, GetDeadLetter, RedriveDeadLetter,
// DiscardDeadLetter) of orders.v1.RelayAdminService and orders.v1.ProjectorAdminService on an
// Admin; the admin servers embed it.
type Server struct {
	// Admin does the work.
	Admin *Admin
}

// MaxReasonFilter is the longest reason_contains a list accepts.
const MaxReasonFilter = 200

// ListDeadLetters lists a page of dead letters, filtered, without their bytes.
func (s Server) ListDeadLetters(ctx context.Context, req *ordersv1.ListDeadLettersRequest) (*ordersv1.ListDeadLettersResponse, error) {
	var v es.Violations
	CheckTopic(&v, req.GetTopic())
	q := Query{Topic: req.GetTopic(), ReasonContains: req.GetReasonContains(), PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken()}
	switch {
	case q.PageSize < 0 || q.PageSize > MaxPage:
		v.Addf("page_size", "must be from 0 to %d, got %d", MaxPage, q.PageSize)
	case q.PageSize == 0:
		q.PageSize = DefaultPage
	}
	if agg := strings.TrimSpace(req.GetAggregateId()); agg != "" {
		if !ids.Valid(agg) {
			v.Add("aggregate_id", ids.Reason)
		}
		q.AggregateID = ids.Canonical(agg)
	}
	if n := utf8.RuneCountInString(q.ReasonContains); n > MaxReasonFilter {
		v.Addf("reason_contains", "must be at most %d characters, got %d", MaxReasonFilter, n)
	}
	for _, t := range []struct {
		field string
		ts    *timestamppb.Timestamp
		into  *time.Time
	}{{"created_after", req.GetCreatedAfter(), &q.CreatedAfter}, {"created_before", req.GetCreatedBefore(), &q.CreatedBefore}} {
		if t.ts == nil {
			continue
		}
		if err := t.ts.CheckValid(); err != nil {
			v.Addf(t.field, "must be a valid timestamp: %v", err)
			continue
		}
		*t.into = t.ts.AsTime()
	}
	if !q.CreatedAfter.IsZero() && !q.CreatedBefore.IsZero() && !q.CreatedAfter.Before(q.CreatedBefore) {
		v.Add("created_before", "must be after created_after")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	dls, next, err := s.Admin.List(ctx, q)
	if err != nil {
		return nil, err
	}
	out := &ordersv1.ListDeadLettersResponse{NextPageToken: next}
	for _, dl := range dls {
		out.DeadLetters = append(out.DeadLetters, ToProto(dl, false))
	}
	return out, nil
}

// GetDeadLetter returns one dead letter with its bytes.
func (s Server) GetDeadLetter(ctx context.Context, req *ordersv1.GetDeadLetterRequest) (*ordersv1.GetDeadLetterResponse, error) {
	if err := checkTopicOnly(req.GetTopic()); err != nil {
		return nil, err
	}
	dl, err := s.Admin.Find(ctx, req.GetTopic(), strings.TrimSpace(req.GetId()))
	if err != nil {
		return nil, err
	}
	return &ordersv1.GetDeadLetterResponse{DeadLetter: ToProto(dl, true)}, nil
}

// RedriveDeadLetter publishes a dead letter again and marks it re-driven.
func (s Server) RedriveDeadLetter(ctx context.Context, req *ordersv1.RedriveDeadLetterRequest) (*ordersv1.RedriveDeadLetterResponse, error) {
	if err := checkTopicOnly(req.GetTopic()); err != nil {
		return nil, err
	}
	dl, _, err := s.Admin.Redrive(ctx, req.GetTopic(), strings.TrimSpace(req.GetId()))
	if err != nil {
		return nil, err
	}
	return &ordersv1.RedriveDeadLetterResponse{DeadLetter: ToProto(dl, false)}, nil
}

// DiscardDeadLetter deletes a dead letter.
func (s Server) DiscardDeadLetter(ctx context.Context, req *ordersv1.DiscardDeadLetterRequest) (*ordersv1.DiscardDeadLetterResponse, error) {
	if err := checkTopicOnly(req.GetTopic()); err != nil {
		return nil, err
	}
	if err := s.Admin.Discard(ctx, req.GetTopic(), strings.TrimSpace(req.GetId())); err != nil {
		return nil, err
	}
	return &ordersv1.DiscardDeadLetterResponse{}, nil
}

// CheckTopic records a violation of a topic longer than Kafka allows.
func CheckTopic(v *es.Violations, topic string) {
	if n := utf8.RuneCountInString(topic); n > MaxTopicLen {
		v.Addf("topic", "must be at most %d characters, got %d", MaxTopicLen, n)
	}
}

func checkTopicOnly(topic string) error {
	var v es.Violations
	CheckTopic(&v, topic)
	return v.Err()
}

// ToProto renders a dead letter, with its bytes when withBytes.
func ToProto(dl *cql.DeadLetter, withBytes bool) *ordersv1.DeadLetter {
	out := &ordersv1.DeadLetter{Id: dl.ID.String(), Topic: dl.Topic, AggregateId: dl.AggregateID, Sequence: dl.Sequence,
		EventId: dl.EventID, EventType: dl.EventType, Reason: dl.Reason, CreatedAt: timestamppb.New(dl.CreatedAt)}
	if !dl.RedrivenAt.IsZero() {
		out.RedrivenAt = timestamppb.New(dl.RedrivenAt)
	}
	if withBytes {
		out.Envelope = dl.Envelope
	}
	return out
}
