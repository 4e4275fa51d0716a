package projector

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gocql/gocql"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/deadletter"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

// AdminServer implements orders.v1.ProjectorAdminService: the projections' versions, aborting a
// rebuild, and the projector's dead letters (recorded under <topic>.projector.dlq, re-driven to
// <topic>).
type AdminServer struct {
	projectorAdminBase
	deadletter.Server // the dead-letter RPCs (shallower than projectorAdminBase's, so they win)
	session           *gocql.Session
}

// projectorAdminBase holds the generated Unimplemented server one level down, so that the
// dead-letter RPCs of deadletter.Server take precedence over its stubs.
type projectorAdminBase struct {
	ordersv1.UnimplementedProjectorAdminServiceServer
}

var _ ordersv1.ProjectorAdminServiceServer = (*AdminServer)(nil)

// NewAdminServer returns the projector's admin service for the event topics orderTopic and
// customerTopic; pub re-drives dead letters.
func NewAdminServer(session *gocql.Session, pub *okafka.Publisher, orderTopic, customerTopic string) *AdminServer {
	return &AdminServer{session: session, Server: deadletter.Server{Admin: &deadletter.Admin{
		Store: cql.NewDeadLetters(session), Publisher: pub,
		Topics: func(topic string) ([]string, error) { return DeadLetterTopics(topic, orderTopic, customerTopic) },
		Target: func(dl *cql.DeadLetter) string { return strings.TrimSuffix(dl.Topic, DLQSuffix) },
	}}}
}

// DeadLetterTopics maps a request's topic to the dead_letters topics of the projector: an event
// topic or its projector dead-letter topic to the latter, empty to those of both event topics.
// The relay's dead-letter topics (<topic>.dlq) are refused.
func DeadLetterTopics(topic, orderTopic, customerTopic string) ([]string, error) {
	switch {
	case topic == "":
		return []string{DLQTopic(orderTopic), DLQTopic(customerTopic)}, nil
	case strings.HasSuffix(topic, DLQSuffix):
		return []string{topic}, nil
	case strings.HasSuffix(topic, okafka.DLQSuffix):
		return nil, es.Invalid("topic", fmt.Sprintf("%q holds the relay's dead letters: ask the relay's admin service (ordersysctl dlq)", topic))
	}
	return []string{DLQTopic(topic)}, nil
}

// GetProjectorStatus returns the versions of every projection.
func (s *AdminServer) GetProjectorStatus(ctx context.Context, _ *ordersv1.GetProjectorStatusRequest) (*ordersv1.GetProjectorStatusResponse, error) {
	out := &ordersv1.GetProjectorStatusResponse{}
	for _, p := range readmodel.Projections() {
		v, err := readmodel.LoadVersions(ctx, s.session, p)
		if err != nil {
			return nil, fmt.Errorf("projection %s: %w: %w", p, es.ErrUnavailable, err)
		}
		st := &ordersv1.ProjectionStatus{Projection: p, Active: int32(v.Active), Building: int32(v.Building),
			Previous: int32(v.Previous), Latest: int32(v.Latest)}
		if !v.SwitchedAt.IsZero() {
			st.SwitchedAt = timestamppb.New(v.SwitchedAt)
		}
		out.Projections = append(out.Projections, st)
	}
	return out, nil
}

// AbortRebuild forgets the version a rebuild of the projection is filling.
func (s *AdminServer) AbortRebuild(ctx context.Context, req *ordersv1.AbortRebuildRequest) (*ordersv1.AbortRebuildResponse, error) {
	p := strings.TrimSpace(req.GetProjection())
	if _, err := readmodel.ProjectionTables(p); err != nil {
		return nil, es.Invalid("projection", fmt.Sprintf("must be one of %s, got %q", strings.Join(readmodel.Projections(), ", "), p))
	}
	v, err := readmodel.LoadVersions(ctx, s.session, p)
	if err != nil {
		return nil, fmt.Errorf("projection %s: %w: %w", p, es.ErrUnavailable, err)
	}
	if v.Building == 0 {
		return nil, &es.RuleError{Rule: "projector.rebuild_running", Subject: p,
			Reason: fmt.Sprintf("no rebuild of %s runs (version %d is active)", p, v.Active)}
	}
	if err := readmodel.AbortRebuild(ctx, s.session, p, v.Building); err != nil {
		if errors.Is(err, readmodel.ErrRebuildConflict) {
			return nil, &es.RuleError{Rule: "projector.rebuild_unchanged", Subject: p,
				Reason: fmt.Sprintf("the rebuild of %s changed meanwhile (%v); look at the status and try again", p, err)}
		}
		return nil, fmt.Errorf("%w: %w", es.ErrUnavailable, err)
	}
	return &ordersv1.AbortRebuildResponse{AbortedVersion: int32(v.Building)}, nil
}
