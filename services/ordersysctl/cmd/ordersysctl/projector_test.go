package main

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// scriptedProjector answers StartRebuild and WatchRebuild with fixed reports (the real service
// is tested against Cassandra and Kafka in services/projector and by the e2e test).
type scriptedProjector struct {
	ordersv1.UnimplementedProjectorAdminServiceServer
	got *ordersv1.StartRebuildRequest
}

var scriptedReports = []*ordersv1.RebuildProgress{
	{Projection: "orders", Version: 4, Phase: ordersv1.RebuildPhase_REBUILD_PHASE_WALKING, Aggregates: 100, Events: 420,
		Fraction: 0.25, EventsPerSecond: 840, Eta: durationpb.New(1500 * time.Millisecond)},
	{Projection: "orders", Version: 4, Phase: ordersv1.RebuildPhase_REBUILD_PHASE_WALKING, Aggregates: 400, Events: 1680, Fraction: 1, EventsPerSecond: 900},
	{Projection: "orders", Version: 4, Phase: ordersv1.RebuildPhase_REBUILD_PHASE_CATCHING_UP, Fraction: 1, Lag: 3},
	{Projection: "orders", Version: 4, Phase: ordersv1.RebuildPhase_REBUILD_PHASE_SWITCHED, Fraction: 1, Switched: true},
}

func (s *scriptedProjector) StartRebuild(req *ordersv1.StartRebuildRequest, stream grpc.ServerStreamingServer[ordersv1.StartRebuildResponse]) error {
	s.got = req
	for _, p := range scriptedReports {
		if err := stream.Send(&ordersv1.StartRebuildResponse{Progress: p}); err != nil {
			return err
		}
	}
	return nil
}

func (s *scriptedProjector) WatchRebuild(*ordersv1.WatchRebuildRequest, grpc.ServerStreamingServer[ordersv1.WatchRebuildResponse]) error {
	return status.Error(codes.NotFound, "this projector runs no rebuild of orders")
}

// TestProjectorRebuildPrintsProgress: `projector rebuild -source store` asks for the event store
// and prints one line per report until the switch; errors and bad usage get their exit codes.
func TestProjectorRebuildPrintsProgress(t *testing.T) {
	stub := &scriptedProjector{}
	ctl := fakeService(t, "-projector", func(srv *grpc.Server) { ordersv1.RegisterProjectorAdminServiceServer(srv, stub) })

	out, code := ctl("projector", "rebuild", "-source", "store", "orders")
	if code != 0 || stub.got.GetProjection() != "orders" || stub.got.GetSource() != ordersv1.RebuildSource_REBUILD_SOURCE_EVENT_STORE {
		t.Fatalf("exit %d, request %v\n%s", code, stub.got, out)
	}
	want := []string{
		"orders v4: event store  25.0%  100 aggregates  420 events  0 skipped  840 events/s  ETA 1.5s",
		"orders v4: event store 100.0%  400 aggregates  1680 events  0 skipped  900 events/s  ETA -",
		"orders v4: catching up, 3 messages to go",
		"orders v4: caught up, readers switched to it",
	}
	if got := strings.Split(strings.TrimSpace(out), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("output:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
	if out, code := ctl("-o", "json", "projector", "rebuild", "-source", "topics", "customers"); code != 0 || stub.got.GetSource() != ordersv1.RebuildSource_REBUILD_SOURCE_TOPICS ||
		strings.Count(out, `"phase"`) != 4 {
		t.Fatalf("-o json, from the topics: exit %d, request %v\n%s", code, stub.got, out)
	}
	if out, code := ctl("projector", "watch-rebuild", "orders"); code != exitNotFound {
		t.Fatalf("watch-rebuild with none running: exit %d, want %d\n%s", code, exitNotFound, out)
	}
	for _, args := range [][]string{
		{"projector", "rebuild", "-source", "kafka", "orders"},
		{"projector", "rebuild"},
		{"projector", "drop-version", "orders", "zero"},
		{"projector", "switch-back"},
	} {
		if out, code := ctl(args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", args, code, exitUsage, out)
		}
	}
}
