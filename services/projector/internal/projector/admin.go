package projector

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gocql/gocql"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/deadletter"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/readmodel"
)

// AdminServer implements orders.v1.ProjectorAdminService: the projections' versions, starting,
// watching and aborting a rebuild, switching back and dropping versions, and the projector's
// dead letters (recorded under <topic>.projector.dlq, re-driven to <topic>).
type AdminServer struct {
	projectorAdminBase
	deadletter.Server // the dead-letter RPCs (shallower than projectorAdminBase's, so they win)
	session           *gocql.Session
	rebuilds          *Rebuilds
	progress          *progressMeter // nil: no position, lag or rate in the status
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

// WithRebuilds lets the server start and watch rebuilds with r (without it StartRebuild and
// WatchRebuild are refused); r's configuration also gives SwitchBack and DropVersion the retire
// grace and polling interval of the projectors.
func (s *AdminServer) WithRebuilds(r *Rebuilds) *AdminServer {
	s.rebuilds = r
	return s
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

// GetProjectorStatus returns the versions of every projection and, when measured
// (MeasureProgress), where their consumer groups stand.
func (s *AdminServer) GetProjectorStatus(ctx context.Context, _ *ordersv1.GetProjectorStatusRequest) (*ordersv1.GetProjectorStatusResponse, error) {
	out := &ordersv1.GetProjectorStatusResponse{}
	for _, p := range readmodel.Projections() {
		v, err := readmodel.LoadVersions(ctx, s.session, p)
		if err != nil {
			return nil, fmt.Errorf("projection %s: %w: %w", p, es.ErrUnavailable, err)
		}
		st := statusProto(v)
		if s.progress != nil {
			// Best effort: the versions are the answer; a broker that does not answer leaves
			// the progress unset.
			st.ActiveProgress, _ = s.progress.measure(ctx, p, v.Active)
			st.BuildingProgress, _ = s.progress.measure(ctx, p, v.Building)
		}
		out.Projections = append(out.Projections, st)
	}
	return out, nil
}

// projectionArg checks a request's projection name.
func projectionArg(name string) (string, error) {
	p := strings.TrimSpace(name)
	if _, err := readmodel.ProjectionTables(p); err != nil {
		return "", es.Invalid("projection", fmt.Sprintf("must be one of %s, got %q", strings.Join(readmodel.Projections(), ", "), p))
	}
	return p, nil
}

// AbortRebuild forgets the version a rebuild of the projection is filling.
func (s *AdminServer) AbortRebuild(ctx context.Context, req *ordersv1.AbortRebuildRequest) (*ordersv1.AbortRebuildResponse, error) {
	p, err := projectionArg(req.GetProjection())
	if err != nil {
		return nil, err
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

// StartRebuild starts (or resumes) a rebuild of the projection in this process and streams its
// progress until readers were switched to the new version.
func (s *AdminServer) StartRebuild(req *ordersv1.StartRebuildRequest, stream grpc.ServerStreamingServer[ordersv1.StartRebuildResponse]) error {
	p, err := projectionArg(req.GetProjection())
	if err != nil {
		return err
	}
	var source RebuildSource
	switch req.GetSource() {
	case ordersv1.RebuildSource_REBUILD_SOURCE_UNSPECIFIED, ordersv1.RebuildSource_REBUILD_SOURCE_TOPICS:
		source = SourceTopics
	case ordersv1.RebuildSource_REBUILD_SOURCE_EVENT_STORE:
		source = SourceEventStore
	default:
		return es.Invalid("source", fmt.Sprintf("unknown source %d", req.GetSource()))
	}
	if s.rebuilds == nil {
		return errNoRebuilds(p)
	}
	run, err := s.rebuilds.Start(p, source)
	if err != nil {
		return err
	}
	return run.Follow(stream.Context(), func(rp RebuildProgress) error {
		return stream.Send(&ordersv1.StartRebuildResponse{Progress: progressProto(rp)})
	})
}

// WatchRebuild streams the progress of the rebuild of the projection this process runs.
func (s *AdminServer) WatchRebuild(req *ordersv1.WatchRebuildRequest, stream grpc.ServerStreamingServer[ordersv1.WatchRebuildResponse]) error {
	p, err := projectionArg(req.GetProjection())
	if err != nil {
		return err
	}
	if s.rebuilds == nil {
		return errNoRebuilds(p)
	}
	run := s.rebuilds.Running(p)
	if run == nil {
		return fmt.Errorf("%w: this projector runs no rebuild of %s (a rebuild run elsewhere shows in GetProjectorStatus)", es.ErrNotFound, p)
	}
	return run.Follow(stream.Context(), func(rp RebuildProgress) error {
		return stream.Send(&ordersv1.WatchRebuildResponse{Progress: progressProto(rp)})
	})
}

func errNoRebuilds(projection string) error {
	return &es.RuleError{Rule: "projector.rebuilds_served", Subject: projection, Reason: "this server does not run rebuilds"}
}

// versionTimes returns, from the projectors' configuration, how long after a switch the
// previous version is surely still written (SwitchBack) and after how long it surely is not
// (DropVersion): the retire grace less, and plus, two polls of projection_versions.
func (s *AdminServer) versionTimes() (current, retired time.Duration) {
	cfg := Config{}.withDefaults()
	if s.rebuilds != nil {
		cfg = s.rebuilds.Config()
	}
	return max(cfg.RetireGrace-2*cfg.PollInterval, 0), cfg.RetireGrace + 2*cfg.PollInterval
}

// SwitchBack makes the previous version of the projection active again while it is still
// written.
func (s *AdminServer) SwitchBack(ctx context.Context, req *ordersv1.SwitchBackRequest) (*ordersv1.SwitchBackResponse, error) {
	p, err := projectionArg(req.GetProjection())
	if err != nil {
		return nil, err
	}
	current, _ := s.versionTimes()
	v, err := readmodel.SwitchBack(ctx, s.session, p, current)
	if err != nil {
		return nil, versionsError(p, "projector.switch_back_safe", err)
	}
	return &ordersv1.SwitchBackResponse{Status: statusProto(v)}, nil
}

// DropVersion drops the tables of a version of the projection that nothing uses.
func (s *AdminServer) DropVersion(ctx context.Context, req *ordersv1.DropVersionRequest) (*ordersv1.DropVersionResponse, error) {
	p, err := projectionArg(req.GetProjection())
	if err != nil {
		return nil, err
	}
	if req.GetVersion() < 1 {
		return nil, es.Invalid("version", fmt.Sprintf("must be at least 1, got %d", req.GetVersion()))
	}
	_, retired := s.versionTimes()
	dropped, err := readmodel.DropVersion(ctx, s.session, p, int(req.GetVersion()), retired)
	if err != nil {
		return nil, versionsError(p, "projector.version_unused", err)
	}
	return &ordersv1.DropVersionResponse{DroppedTables: dropped}, nil
}

// versionsError maps an error of a change of versions for a client.
func versionsError(projection, rule string, err error) error {
	switch {
	case errors.Is(err, es.ErrNotFound), errors.Is(err, es.ErrInvalidArgument):
		return err
	case errors.Is(err, readmodel.ErrUnsafe), errors.Is(err, readmodel.ErrRebuildConflict):
		return &es.RuleError{Rule: rule, Subject: projection, Reason: err.Error()}
	}
	return fmt.Errorf("%w: %w", es.ErrUnavailable, err)
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

// progressProto renders a rebuild's progress report.
func progressProto(p RebuildProgress) *ordersv1.RebuildProgress {
	out := &ordersv1.RebuildProgress{Projection: p.Projection, Version: int32(p.Version),
		Aggregates: p.Aggregates, Events: p.Events, SkippedAggregates: p.Skipped, Fraction: p.Fraction,
		EventsPerSecond: p.Rate, Lag: p.Lag, Switched: p.Switched}
	switch p.Source {
	case SourceTopics:
		out.Source = ordersv1.RebuildSource_REBUILD_SOURCE_TOPICS
	case SourceEventStore:
		out.Source = ordersv1.RebuildSource_REBUILD_SOURCE_EVENT_STORE
	}
	switch p.Phase {
	case PhaseWalking:
		out.Phase = ordersv1.RebuildPhase_REBUILD_PHASE_WALKING
	case PhaseCatchingUp:
		out.Phase = ordersv1.RebuildPhase_REBUILD_PHASE_CATCHING_UP
	case PhaseSwitched:
		out.Phase = ordersv1.RebuildPhase_REBUILD_PHASE_SWITCHED
	}
	if p.ETA > 0 {
		out.Eta = durationpb.New(p.ETA)
	}
	return out
}
