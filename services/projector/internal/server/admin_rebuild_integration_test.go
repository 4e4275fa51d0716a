package server_test

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/services/projector/internal/app"
	"github.com/ordersys/ordersys/services/projector/internal/store"
)

// serveAdmin serves the projector's admin service, with rebuilds, on a real gRPC server (the
// projector's interceptors: error mapping included) and returns a client.
func (e *env) serveAdmin() ordersv1.ProjectorAdminServiceClient {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rebuilds := app.NewRebuilds(ctx, e.cfg, e.deps.Deps(), app.RebuildOptions{
		Poll: 200 * time.Millisecond, Linger: 200 * time.Millisecond, PageSize: 4, Workers: 2})
	srv := grpcx.NewServer(grpcx.ServerOptions{Logger: e.deps.Logger, ShutdownTimeout: 5 * time.Second})
	ordersv1.RegisterProjectorAdminServiceServer(srv, e.adminServer(app.NewAdmin(store.New(e.s)).WithRebuilds(rebuilds), nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ServeListener(ctx, ln)
	}()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		<-done
	})
	return ordersv1.NewProjectorAdminServiceClient(conn)
}

// progressMessage is a message of a rebuild progress stream.
type progressMessage interface {
	GetProgress() *ordersv1.RebuildProgress
}

// receiveAll reads a progress stream to its end.
func receiveAll[T progressMessage](t *testing.T, recv func() (T, error)) ([]*ordersv1.RebuildProgress, error) {
	t.Helper()
	var out []*ordersv1.RebuildProgress
	for {
		m, err := recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m.GetProgress())
	}
}

// TestAdminStartRebuildFromEventStoreStreamsProgressUntilSwitched (operations issue): through
// the admin gRPC service, StartRebuild from the event store streams the walk's progress (events,
// ring fraction, rate) and ends once readers were switched, with read models equal to the
// replayed store; a rebuild outlives the client that started it and WatchRebuild follows it; a
// second start of a running rebuild, switching back and dropping versions are refused where
// unsafe and done where safe.
func TestAdminStartRebuildFromEventStoreStreamsProgressUntilSwitched(t *testing.T) {
	e := newEnv(t)
	e.cfg.RetireGrace = 10 * time.Second // the previous version stays written (SwitchBack allowed) for 10 s
	customers, orders, stored := e.history(rand.New(rand.NewPCG(3, 4)), 3, 5)
	_, stop := e.runSupervisor()
	defer stop()
	client := e.serveAdmin()
	ctx := e.ctx()

	stream, err := client.StartRebuild(ctx, &ordersv1.StartRebuildRequest{Projection: readmodel.ProjectionOrders,
		Source: ordersv1.RebuildSource_REBUILD_SOURCE_EVENT_STORE})
	if err != nil {
		t.Fatal(err)
	}
	got, err := receiveAll(t, stream.Recv)
	if err != nil {
		t.Fatalf("stream ended with %v after %v", err, got)
	}
	var walking int
	var walked *ordersv1.RebuildProgress
	for _, p := range got {
		if p.GetPhase() == ordersv1.RebuildPhase_REBUILD_PHASE_WALKING {
			walking++
			walked = p
		}
		if p.GetVersion() != 2 || p.GetSource() != ordersv1.RebuildSource_REBUILD_SOURCE_EVENT_STORE {
			t.Fatalf("report %v", p)
		}
	}
	last := got[len(got)-1]
	if walking < 3 || walked.GetFraction() != 1 || walked.GetEvents() < int64(stored) || walked.GetEventsPerSecond() <= 0 ||
		!last.GetSwitched() || last.GetPhase() != ordersv1.RebuildPhase_REBUILD_PHASE_SWITCHED {
		t.Fatalf("progress %v", got)
	}
	t.Logf("%d reports, the walk's last: %v", len(got), walked)

	// The customers projection: the client that starts it goes away after the first report.
	sctx, cancel := context.WithCancel(ctx)
	first, err := client.StartRebuild(sctx, &ordersv1.StartRebuildRequest{Projection: readmodel.ProjectionCustomers,
		Source: ordersv1.RebuildSource_REBUILD_SOURCE_EVENT_STORE})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	again, err := client.StartRebuild(ctx, &ordersv1.StartRebuildRequest{Projection: readmodel.ProjectionCustomers})
	if err == nil {
		_, err = again.Recv()
	}
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("a second start while one runs: %v, want FAILED_PRECONDITION", err)
	}
	watch, err := client.WatchRebuild(ctx, &ordersv1.WatchRebuildRequest{Projection: readmodel.ProjectionCustomers})
	if err != nil {
		t.Fatal(err)
	}
	got, err = receiveAll(t, watch.Recv)
	if err != nil || len(got) == 0 || !got[len(got)-1].GetSwitched() {
		t.Fatalf("watch: %v, %v", got, err)
	}
	for _, p := range readmodel.Projections() {
		if v, err := readmodel.LoadVersions(ctx, e.s, p); err != nil || v.Active != 2 || v.Previous != 1 {
			t.Fatalf("%s versions %+v %v", p, v, err)
		}
	}
	tables := readmodel.NewOrderTables(e.s, 2)
	if err := equalToReplay(e, tables, 2, orders, customers); err != nil {
		t.Fatal(err)
	}
	assertListedOnceUnderStatus(t, e, tables, orders)

	// Nothing runs any more.
	w, err := client.WatchRebuild(ctx, &ordersv1.WatchRebuildRequest{Projection: readmodel.ProjectionOrders})
	if err == nil {
		_, err = w.Recv()
	}
	if status.Code(err) != codes.NotFound {
		t.Fatalf("watch with no rebuild: %v, want NOT_FOUND", err)
	}
	// Versions in use are not dropped; the previous one is switched back to while written.
	for _, version := range []int32{1, 2} {
		if _, err := client.DropVersion(ctx, &ordersv1.DropVersionRequest{Projection: readmodel.ProjectionCustomers, Version: version}); status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("drop customers v%d: %v, want FAILED_PRECONDITION", version, err)
		}
	}
	if _, err := client.DropVersion(ctx, &ordersv1.DropVersionRequest{Projection: readmodel.ProjectionCustomers, Version: 9}); status.Code(err) != codes.NotFound {
		t.Fatalf("drop a version never allocated: %v, want NOT_FOUND", err)
	}
	back, err := client.SwitchBack(ctx, &ordersv1.SwitchBackRequest{Projection: readmodel.ProjectionCustomers})
	if err != nil || back.GetStatus().GetActive() != 1 || back.GetStatus().GetPrevious() != 2 {
		t.Fatalf("switch back: %v, %v", back, err)
	}
}
