// Package grpcapi is the projector's gRPC edge: orders.v1.ProjectorAdminService on the admin use
// cases of internal/app and the dead-letter RPCs of pkg/deadletter, translating requests and
// replies to and from protobuf.
package grpcapi

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/deadletter"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/services/projector/internal/app"
	"github.com/ordersys/ordersys/services/projector/internal/consumer"
)

// AdminServer implements orders.v1.ProjectorAdminService: the projections' versions, starting,
// watching and aborting a rebuild, switching back and dropping versions, and the projector's
// dead letters (recorded under <topic>.projector.dlq, re-driven to <topic>).
type AdminServer struct {
	projectorAdminBase
	deadletter.Server // the dead-letter RPCs (shallower than projectorAdminBase's, so they win)
	admin             *app.Admin
}

// projectorAdminBase holds the generated Unimplemented server one level down, so that the
// dead-letter RPCs of deadletter.Server take precedence over its stubs.
type projectorAdminBase struct {
	ordersv1.UnimplementedProjectorAdminServiceServer
}

var _ ordersv1.ProjectorAdminServiceServer = (*AdminServer)(nil)

// NewAdminServer returns the projector's admin service on the use cases admin, with the dead
// letters of the event topics orderTopic and customerTopic recorded in deadLetters; pub
// re-drives them.
func NewAdminServer(admin *app.Admin, deadLetters *cql.DeadLetters, pub *okafka.Publisher, orderTopic, customerTopic string) *AdminServer {
	return &AdminServer{admin: admin, Server: deadletter.Server{Admin: &deadletter.Admin{
		Store: deadLetters, Publisher: pub,
		Topics: func(topic string) ([]string, error) { return DeadLetterTopics(topic, orderTopic, customerTopic) },
		Target: func(dl *cql.DeadLetter) string { return strings.TrimSuffix(dl.Topic, consumer.DLQSuffix) },
	}}}
}

// DeadLetterTopics maps a request's topic to the dead_letters topics of the projector: an event
// topic or its projector dead-letter topic to the latter, empty to those of both event topics.
// The relay's dead-letter topics (<topic>.dlq) are refused.
func DeadLetterTopics(topic, orderTopic, customerTopic string) ([]string, error) {
	switch {
	case topic == "":
		return []string{consumer.DLQTopic(orderTopic), consumer.DLQTopic(customerTopic)}, nil
	case strings.HasSuffix(topic, consumer.DLQSuffix):
		return []string{topic}, nil
	case strings.HasSuffix(topic, okafka.DLQSuffix):
		return nil, es.Invalid("topic", fmt.Sprintf("%q holds the relay's dead letters: ask the relay's admin service (ordersysctl dlq)", topic))
	}
	return []string{consumer.DLQTopic(topic)}, nil
}

// GetProjectorStatus returns the versions of every projection and, when measured
// (app.Admin.MeasureProgress), where their consumer groups stand.
func (s *AdminServer) GetProjectorStatus(ctx context.Context, _ *ordersv1.GetProjectorStatusRequest) (*ordersv1.GetProjectorStatusResponse, error) {
	sts, err := s.admin.Status(ctx)
	if err != nil {
		return nil, err
	}
	out := &ordersv1.GetProjectorStatusResponse{}
	for _, st := range sts {
		p := statusProto(st.Versions)
		p.ActiveProgress, p.BuildingProgress = projectionProgressProto(st.ActiveProgress), projectionProgressProto(st.BuildingProgress)
		out.Projections = append(out.Projections, p)
	}
	return out, nil
}

// AbortRebuild forgets the version a rebuild of the projection is filling.
func (s *AdminServer) AbortRebuild(ctx context.Context, req *ordersv1.AbortRebuildRequest) (*ordersv1.AbortRebuildResponse, error) {
	v, err := s.admin.AbortRebuild(ctx, req.GetProjection())
	if err != nil {
		return nil, err
	}
	return &ordersv1.AbortRebuildResponse{AbortedVersion: int32(v)}, nil
}

// StartRebuild starts (or resumes) a rebuild of the projection in this process and streams its
// progress until readers were switched to the new version.
func (s *AdminServer) StartRebuild(req *ordersv1.StartRebuildRequest, stream grpc.ServerStreamingServer[ordersv1.StartRebuildResponse]) error {
	p, err := app.ProjectionArg(req.GetProjection())
	if err != nil {
		return err
	}
	var source app.RebuildSource
	switch req.GetSource() {
	case ordersv1.RebuildSource_REBUILD_SOURCE_UNSPECIFIED, ordersv1.RebuildSource_REBUILD_SOURCE_TOPICS:
		source = app.SourceTopics
	case ordersv1.RebuildSource_REBUILD_SOURCE_EVENT_STORE:
		source = app.SourceEventStore
	default:
		return es.Invalid("source", fmt.Sprintf("unknown source %d", req.GetSource()))
	}
	run, err := s.admin.StartRebuild(p, source)
	if err != nil {
		return err
	}
	return run.Follow(stream.Context(), func(rp app.RebuildProgress) error {
		return stream.Send(&ordersv1.StartRebuildResponse{Progress: progressProto(rp)})
	})
}

// WatchRebuild streams the progress of the rebuild of the projection this process runs.
func (s *AdminServer) WatchRebuild(req *ordersv1.WatchRebuildRequest, stream grpc.ServerStreamingServer[ordersv1.WatchRebuildResponse]) error {
	run, err := s.admin.WatchRebuild(req.GetProjection())
	if err != nil {
		return err
	}
	return run.Follow(stream.Context(), func(rp app.RebuildProgress) error {
		return stream.Send(&ordersv1.WatchRebuildResponse{Progress: progressProto(rp)})
	})
}

// SwitchBack makes the previous version of the projection active again while it is still
// written.
func (s *AdminServer) SwitchBack(ctx context.Context, req *ordersv1.SwitchBackRequest) (*ordersv1.SwitchBackResponse, error) {
	v, err := s.admin.SwitchBack(ctx, req.GetProjection())
	if err != nil {
		return nil, err
	}
	return &ordersv1.SwitchBackResponse{Status: statusProto(v)}, nil
}

// DropVersion drops the tables of a version of the projection that nothing uses.
func (s *AdminServer) DropVersion(ctx context.Context, req *ordersv1.DropVersionRequest) (*ordersv1.DropVersionResponse, error) {
	dropped, err := s.admin.DropVersion(ctx, req.GetProjection(), int(req.GetVersion()))
	if err != nil {
		return nil, err
	}
	return &ordersv1.DropVersionResponse{DroppedTables: dropped}, nil
}

// statusProto renders a projection's versions.
func statusProto(v readmodel.Versions) *ordersv1.ProjectionStatus {
	st := &ordersv1.ProjectionStatus{Projection: v.Projection, Active: int32(v.Active), Building: int32(v.Building),
		Previous: int32(v.Previous), Latest: int32(v.Latest)}
	if !v.SwitchedAt.IsZero() {
		st.SwitchedAt = timestamppb.New(v.SwitchedAt)
	}
	return st
}

// projectionProgressProto renders where a projection version's consumer group stands (nil:
// not measured).
func projectionProgressProto(p *app.Progress) *ordersv1.ProjectionProgress {
	if p == nil {
		return nil
	}
	return &ordersv1.ProjectionProgress{Version: int32(p.Version), Position: p.Position, Lag: p.Lag,
		LagSeconds: p.LagSeconds, RatePerSecond: p.RatePerSecond}
}

// progressProto renders a rebuild's progress report.
func progressProto(p app.RebuildProgress) *ordersv1.RebuildProgress {
	out := &ordersv1.RebuildProgress{Projection: p.Projection, Version: int32(p.Version),
		Aggregates: p.Aggregates, Events: p.Events, SkippedAggregates: p.Skipped, Fraction: p.Fraction,
		EventsPerSecond: p.Rate, Lag: p.Lag, Switched: p.Switched}
	switch p.Source {
	case app.SourceTopics:
		out.Source = ordersv1.RebuildSource_REBUILD_SOURCE_TOPICS
	case app.SourceEventStore:
		out.Source = ordersv1.RebuildSource_REBUILD_SOURCE_EVENT_STORE
	}
	switch p.Phase {
	case app.PhaseWalking:
		out.Phase = ordersv1.RebuildPhase_REBUILD_PHASE_WALKING
	case app.PhaseCatchingUp:
		out.Phase = ordersv1.RebuildPhase_REBUILD_PHASE_CATCHING_UP
	case app.PhaseSwitched:
		out.Phase = ordersv1.RebuildPhase_REBUILD_PHASE_SWITCHED
	}
	if p.ETA > 0 {
		out.Eta = durationpb.New(p.ETA)
	}
	return out
}
