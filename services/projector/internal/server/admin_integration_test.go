package server_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/services/projector/internal/app"
	"github.com/ordersys/ordersys/services/projector/internal/consumer"
	"github.com/ordersys/ordersys/services/projector/internal/store"
)

// TestAdminDeadLetters: the projector's dead letters, recorded under <topic>.projector.dlq, are
// listed, shown, re-driven and discarded through ProjectorAdminService (issue 13: the only
// lookup there was stripped ".dlq" and searched "<topic>.projector", finding nothing, and
// nothing re-drove them). A re-driven event reaches the read model.
func TestAdminDeadLetters(t *testing.T) {
	e := newEnv(t)
	pub := okafka.NewPublisher(okafka.PublisherConfig{Cluster: e.kafka})
	t.Cleanup(func() { _ = pub.Close() })
	admin := e.adminServer(app.NewAdmin(store.New(e.s)), pub)
	ctx := e.ctx()

	// Two created orders dead-lettered without ever reaching the event topic.
	kept, keptEvents := e.newOrder(gocql.TimeUUID().String(), 1)
	_, dropEvents := e.newOrder(gocql.TimeUUID().String(), 1)
	for _, env := range []es.Envelope{keptEvents[0], dropEvents[0]} {
		m, cause := message(t, e.orderTopic, env, ""), errors.New("injected by the test")
		if err := e.deps.DeadLetters.Publish(ctx, readmodel.ProjectionOrders, m, app.ReasonUnappliable, cause); err != nil {
			t.Fatal(err)
		}
		if err := e.deps.DeadLetters.Record(ctx, readmodel.ProjectionOrders, m, app.ReasonUnappliable, cause); err != nil {
			t.Fatal(err)
		}
	}

	ids := map[string]string{} // aggregate id -> dead letter id
	for _, topic := range []string{"", e.orderTopic, consumer.DLQTopic(e.orderTopic)} {
		res, err := admin.ListDeadLetters(ctx, &ordersv1.ListDeadLettersRequest{Topic: topic})
		if err != nil {
			t.Fatalf("list %q: %v", topic, err)
		}
		if len(res.GetDeadLetters()) != 2 {
			t.Fatalf("list %q: %d dead letters, want 2: %v", topic, len(res.GetDeadLetters()), res.GetDeadLetters())
		}
		for _, dl := range res.GetDeadLetters() {
			if dl.GetTopic() != consumer.DLQTopic(e.orderTopic) || dl.GetReason() == "" || len(dl.GetEnvelope()) != 0 {
				t.Fatalf("list %q: %v", topic, dl)
			}
			ids[dl.GetAggregateId()] = dl.GetId()
		}
	}
	if res, err := admin.ListDeadLetters(ctx, &ordersv1.ListDeadLettersRequest{Topic: e.customerTopic}); err != nil || len(res.GetDeadLetters()) != 0 {
		t.Fatalf("customer topic: %v, %v; want none", res.GetDeadLetters(), err)
	}
	if _, err := admin.ListDeadLetters(ctx, &ordersv1.ListDeadLettersRequest{Topic: okafka.DLQTopic(e.orderTopic)}); !errors.Is(err, es.ErrInvalidArgument) {
		t.Fatalf("the relay's dead-letter topic: %v, want invalid argument", err)
	}

	keptID, dropID := ids[kept.AggregateID()], ids[dropEvents[0].AggregateID]
	got, err := admin.GetDeadLetter(ctx, &ordersv1.GetDeadLetterRequest{Id: keptID})
	if err != nil || got.GetDeadLetter().GetAggregateId() != kept.AggregateID() || len(got.GetDeadLetter().GetEnvelope()) == 0 {
		t.Fatalf("get %s: %v, %v", keptID, got, err)
	}

	red, err := admin.RedriveDeadLetter(ctx, &ordersv1.RedriveDeadLetterRequest{Id: keptID})
	if err != nil || red.GetDeadLetter().GetRedrivenAt() == nil {
		t.Fatalf("redrive %s: %v, %v", keptID, red, err)
	}
	_, stop := e.runSupervisor()
	defer stop()
	e.orderAt(1, kept.AggregateID(), 1) // the re-driven event went to the event topic and was projected

	if _, err := admin.DiscardDeadLetter(ctx, &ordersv1.DiscardDeadLetterRequest{Id: dropID, Topic: e.orderTopic}); err != nil {
		t.Fatalf("discard %s: %v", dropID, err)
	}
	if _, err := admin.GetDeadLetter(ctx, &ordersv1.GetDeadLetterRequest{Id: dropID}); !errors.Is(err, es.ErrNotFound) {
		t.Fatalf("get discarded %s: %v, want not found", dropID, err)
	}
}

// TestAdminAbortRebuild: AbortRebuild forgets the version being built (issue 13:
// readmodel.AbortRebuild existed and nothing called it); the status shows it, and aborting with
// no rebuild running, or an unknown projection, is refused.
func TestAdminAbortRebuild(t *testing.T) {
	e := newEnv(t)
	admin := e.adminServer(app.NewAdmin(store.New(e.s)), nil)
	ctx := e.ctx()

	var rule *es.RuleError
	if _, err := admin.AbortRebuild(ctx, &ordersv1.AbortRebuildRequest{Projection: "orders"}); !errors.As(err, &rule) {
		t.Fatalf("abort without a rebuild: %v, want a rule error", err)
	}
	if _, err := admin.AbortRebuild(ctx, &ordersv1.AbortRebuildRequest{Projection: "invoices"}); !errors.Is(err, es.ErrInvalidArgument) {
		t.Fatalf("abort of an unknown projection: %v, want invalid argument", err)
	}
	building, _, err := readmodel.BeginRebuild(ctx, e.s, readmodel.ProjectionOrders)
	if err != nil {
		t.Fatal(err)
	}
	status := func() map[string]*ordersv1.ProjectionStatus {
		t.Helper()
		res, err := admin.GetProjectorStatus(ctx, &ordersv1.GetProjectorStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*ordersv1.ProjectionStatus{}
		for _, p := range res.GetProjections() {
			out[p.GetProjection()] = p
		}
		return out
	}
	if st := status(); st["orders"].GetBuilding() != int32(building) || st["orders"].GetActive() != 1 || st["customers"].GetActive() != 1 {
		t.Fatalf("status during the rebuild of v%d: %v", building, st)
	}
	res, err := admin.AbortRebuild(ctx, &ordersv1.AbortRebuildRequest{Projection: "orders"})
	if err != nil || res.GetAbortedVersion() != int32(building) {
		t.Fatalf("abort: %v, %v; want version %d", res, err, building)
	}
	if st := status(); st["orders"].GetBuilding() != 0 || st["orders"].GetActive() != 1 || st["orders"].GetLatest() != int32(building) {
		t.Fatalf("status after the abort: %v", st["orders"])
	}
}

// TestAdminStatusShowsProgress: with progress measured, the status shows where the active
// version's consumer group stands: its position grows to every message published, its lag
// falls to 0, and a rate appears between two samples (issue 13: the status had versions only).
func TestAdminStatusShowsProgress(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(e.ctx())
	defer cancel()
	admin := e.adminServer(app.NewAdmin(store.New(e.s)).MeasureProgress(ctx, e.cfg, e.deps.Groups(), 200*time.Millisecond), nil)
	orders := func() *ordersv1.ProjectionStatus {
		t.Helper()
		res, err := admin.GetProjectorStatus(ctx, &ordersv1.GetProjectorStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range res.GetProjections() {
			if p.GetProjection() == "orders" {
				return p
			}
		}
		t.Fatal("no orders projection in the status")
		return nil
	}
	const n = 12
	publishing := time.Now()
	for i := 0; i < n; i++ {
		_, envs := e.newOrder(ids.New(), 1)
		e.publish(envs...)
	}
	time.Sleep(time.Second)
	p := orders().GetActiveProgress()
	if p.GetVersion() != 1 || p.GetLag() != n || p.GetPosition() != 0 {
		t.Fatalf("before the projector ran: %v, want version 1, lag %d, position 0", p, n)
	}
	// The first message waiting was published at least a second ago, and after publishing began.
	if most := time.Since(publishing).Seconds(); p.GetLagSeconds() < 1 || p.GetLagSeconds() > most {
		t.Fatalf("lag before the projector ran: %.3f s, want between 1 and %.3f (the first message's age)", p.GetLagSeconds(), most)
	}
	_, stop := e.runSupervisor()
	defer stop()
	// More messages over 4 s, so that the position grows across several samples.
	go func() {
		for i := 0; i < n; i++ {
			_, envs := e.newOrder(ids.New(), 1)
			e.publish(envs...)
			time.Sleep(time.Second / 3)
		}
	}()
	var seenRate bool
	eventually(t, time.Minute, func() error {
		p := orders().GetActiveProgress()
		seenRate = seenRate || p.GetRatePerSecond() > 0
		if p.GetPosition() != 2*n || p.GetLag() != 0 || p.GetLagSeconds() != 0 {
			return fmt.Errorf("progress %v, want position %d, lag 0 (0 s)", p, 2*n)
		}
		return nil
	})
	if !seenRate {
		t.Error("no rate was ever reported while the position grew")
	}
	if b := orders().GetBuildingProgress(); b != nil {
		t.Errorf("building progress %v without a rebuild", b)
	}
}
