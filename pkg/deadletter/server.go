package deadletter

import (
	"context"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// Limits of the requests (stated on the Rules lines of proto/orders/v1/relay_admin.proto).
const (
	// DefaultPage and MaxPage bound ListDeadLetters per topic.
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

// ListDeadLetters lists dead letters without their bytes.
func (s Server) ListDeadLetters(ctx context.Context, req *ordersv1.ListDeadLettersRequest) (*ordersv1.ListDeadLettersResponse, error) {
	var v es.Violations
	CheckTopic(&v, req.GetTopic())
	size := int(req.GetPageSize())
	switch {
	case size < 0 || size > MaxPage:
		v.Addf("page_size", "must be from 0 to %d, got %d", MaxPage, size)
	case size == 0:
		size = DefaultPage
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	dls, err := s.Admin.List(ctx, req.GetTopic(), size)
	if err != nil {
		return nil, err
	}
	out := &ordersv1.ListDeadLettersResponse{}
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
