package app_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/grpcx"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/testinfra"
	"github.com/ordersys/ordersys/services/cdc-relay/internal/app"
)

// insertPoisonRow writes an outbox row with garbage where the envelope should be, for an
// aggregate event_store does not know, and returns the row's id.
func (e *env) insertPoisonRow() gocql.UUID {
	e.t.Helper()
	agg, row := gocql.TimeUUID(), gocql.TimeUUID()
	if err := e.session.Query(`INSERT INTO outbox_messages (bucket, shard, id, aggregate_id, aggregate_type, sequence, event_id,
 event_type, schema_version, topic, partition_key, envelope, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		cql.Bucket(time.Now()), cql.ShardOf(agg.String()), row, agg, "Order", int64(1), gocql.TimeUUID(), "OrderCreated", 1,
		e.orderTopic, agg.String(), []byte{0xde, 0xad, 0xbe, 0xef}, time.Now()).Exec(); err != nil {
		e.t.Fatal(err)
	}
	return row
}

// TestRelayDeadLettersPoisonAndRedrives puts a row that cannot be decoded in the outbox and
// commits an event larger than the relay may publish between two ordinary ones: both go to the
// dead-letter topic (with a reason header) and table, the other events flow on, and the admin
// lists them and re-drives the large one once the limit allows it.
func TestRelayDeadLettersPoisonAndRedrives(t *testing.T) {
	testinfra.Require(t)
	e := newEnv(t, nil)
	c := collect(t, e.kafka, e.orderTopic)
	dlq := collect(t, e.kafka, okafka.DLQTopic(e.orderTopic))
	r := e.startInProcess("r1", map[string]string{"ORDERSYS_KAFKA_MAX_MESSAGE_BYTES": "65536"})
	waitUntil(t, "leadership", 20*time.Second, func() bool { return r.metric("ordersys_relay_leader") == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	e.insertPoisonRow()

	// An order whose second event is 100 KB (over the relay's 64 KiB limit), then a third.
	big := uuid.NewString()
	if _, err := e.appendOrder(ctx, big, 0, 1); err != nil {
		t.Fatal(err)
	}
	env := es.Envelope{EventID: uuid.NewString(), AggregateID: big, AggregateType: "Order", Sequence: 2,
		Event: order.OrderShipped{TrackingNumber: "T2", Carrier: "ups"}, CausationID: "cmd-big", CorrelationID: "corr",
		OccurredAt: time.Now().UTC(), Metadata: map[string]string{"attachment": strings.Repeat("x", 100_000)}}
	if err := registry.EncodeEnvelope(&env); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Append(ctx, es.AppendRequest{AggregateID: big, AggregateType: "Order", ExpectedVersion: 1, Events: []es.Envelope{env}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.appendOrder(ctx, big, 2, 1); err != nil {
		t.Fatal(err)
	}
	// And ordinary traffic.
	want, _, err := e.produce(ctx, 5, 4, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}

	dlq.waitDistinct(t, 2, 30*time.Second)
	c.waitDistinct(t, 5*4+2, 30*time.Second)
	verify(t, c.records(), want, 3)
	var seqs []int64
	for _, rec := range c.records() {
		if rec.agg == big {
			seqs = append(seqs, rec.seq)
		}
	}
	if len(seqs) != 2 || seqs[0] != 1 || seqs[1] != 3 {
		t.Fatalf("order %s: sequences %v on the topic, want [1 3] (2 dead-lettered)", big, seqs)
	}
	for _, rec := range dlq.records() {
		reason, _ := okafka.Header(rec.headers, okafka.HeaderDLQReason)
		src, _ := okafka.Header(rec.headers, okafka.HeaderDLQSourceTopic)
		if reason == "" || src != e.orderTopic {
			t.Errorf("dead letter %s#%d: reason %q, source topic %q", rec.agg, rec.seq, reason, src)
		}
		t.Logf("dead letter %s#%d: %s", rec.agg, rec.seq, reason)
	}
	if got := r.sum("ordersys_relay_dead_lettered_total"); got != 2 {
		t.Errorf("dead_lettered_total = %v, want 2", got)
	}
	// The undecodable row is not only dead-lettered: it is counted as such (the too-large event
	// is not), and the relay's "ordersys.decoding" health says so while the server stays SERVING.
	if got := r.sum("ordersys_relay_undecodable_events_total"); got != 1 {
		t.Errorf("undecodable_events_total = %v, want 1", got)
	}
	conn, err := grpcx.ClientConn(r.grpcAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for service, want := range map[string]healthpb.HealthCheckResponse_ServingStatus{
		grpcx.HealthServiceDecoding: healthpb.HealthCheckResponse_NOT_SERVING, "": healthpb.HealthCheckResponse_SERVING,
	} {
		hr, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil || hr.GetStatus() != want {
			t.Errorf("health %q: %v %v, want %v", service, hr.GetStatus(), err, want)
		}
	}
	dls, err := cql.NewDeadLetters(e.session).List(ctx, e.orderTopic, gocql.UUID{}, time.Time{}, time.Time{}, 10)
	if err != nil || len(dls) != 2 {
		t.Fatalf("dead_letters: %d rows (%v), want 2", len(dls), err)
	}

	// The admin lists both and re-drives the large one with a limit that allows it.
	cfg := e.config(map[string]string{"ORDERSYS_KAFKA_MAX_MESSAGE_BYTES": "1000000"})
	admin, closeAdmin, err := app.NewAdmin(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAdmin()
	var out bytes.Buffer
	if n, err := admin.List(ctx, &out, "", 100); err != nil || n != 2 {
		t.Fatalf("list: %d (%v)\n%s", n, err, out.String())
	}
	t.Logf("cdc-relay dlq list:\n%s", out.String())
	var bigID, poisonID string
	for _, dl := range dls {
		if dl.AggregateID == big {
			bigID = dl.ID.String()
		} else {
			poisonID = dl.ID.String()
		}
		if !strings.Contains(out.String(), dl.ID.String()) {
			t.Errorf("list does not show %s", dl.ID)
		}
	}
	out.Reset()
	if err := admin.Redrive(ctx, &out, "", bigID); err != nil {
		t.Fatalf("redrive %s: %v", bigID, err)
	}
	t.Log(strings.TrimSpace(out.String()))
	waitUntil(t, "the re-driven event", 30*time.Second, func() bool {
		for _, rec := range c.records() {
			if rec.agg == big && rec.seq == 2 {
				return true
			}
		}
		return false
	})
	if err := admin.Redrive(ctx, &out, "", poisonID); !errors.Is(err, app.ErrNotRedrivable) {
		t.Fatalf("redrive of the undecodable row: %v, want ErrNotRedrivable", err)
	}
	id, _ := gocql.ParseUUID(bigID)
	got, err := cql.NewDeadLetters(e.session).Get(ctx, e.orderTopic, id)
	if err != nil || got.RedrivenAt.IsZero() {
		t.Fatalf("dead letter not marked re-driven: %+v %v", got, err)
	}

	// The same through the relay's admin gRPC service, as ordersysctl calls it.
	adm := ordersv1.NewRelayAdminServiceClient(conn)
	st, err := adm.GetRelayStatus(ctx, &ordersv1.GetRelayStatusRequest{})
	if err != nil || !st.GetLeader() || st.GetOwner() == "" || st.GetBreakerState() != "closed" || st.GetPublished() < 5*4+2 || st.GetDeadLettered() != 2 {
		t.Fatalf("status %v (%v): want the leader, breaker closed, >= %d published, 2 dead-lettered", st, err, 5*4+2)
	}
	list, err := adm.ListDeadLetters(ctx, &ordersv1.ListDeadLettersRequest{Topic: okafka.DLQTopic(e.orderTopic)})
	if err != nil || len(list.GetDeadLetters()) != 2 {
		t.Fatalf("ListDeadLetters: %v %v, want 2", list, err)
	}
	one, err := adm.GetDeadLetter(ctx, &ordersv1.GetDeadLetterRequest{Id: poisonID})
	if err != nil || string(one.GetDeadLetter().GetEnvelope()) != "\xde\xad\xbe\xef" {
		t.Fatalf("GetDeadLetter %s: %v %v, want the poison bytes", poisonID, one, err)
	}
	if _, err := adm.RedriveDeadLetter(ctx, &ordersv1.RedriveDeadLetterRequest{Id: poisonID}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("RedriveDeadLetter of the undecodable row: %v, want FailedPrecondition", err)
	}
	if _, err := adm.GetDeadLetter(ctx, &ordersv1.GetDeadLetterRequest{Id: ids.Nil}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("GetDeadLetter of the nil id: %v, want InvalidArgument", err)
	}
	if _, err := adm.DiscardDeadLetter(ctx, &ordersv1.DiscardDeadLetterRequest{Id: poisonID}); err != nil {
		t.Fatalf("DiscardDeadLetter: %v", err)
	}
	if _, err := adm.GetDeadLetter(ctx, &ordersv1.GetDeadLetterRequest{Id: poisonID}); status.Code(err) != codes.NotFound {
		t.Fatalf("GetDeadLetter after discard: %v, want NotFound", err)
	}
	if list, err = adm.ListDeadLetters(ctx, &ordersv1.ListDeadLettersRequest{}); err != nil || len(list.GetDeadLetters()) != 1 ||
		list.GetDeadLetters()[0].GetRedrivenAt() == nil {
		t.Fatalf("ListDeadLetters after discard: %v %v, want the re-driven one only", list, err)
	}
	// The projector's dead-letter topic is not the relay's: stripping ".dlq" searched
	// "<topic>.projector" and answered an empty list; now the caller is told where to ask.
	_, err = adm.ListDeadLetters(ctx, &ordersv1.ListDeadLettersRequest{Topic: e.orderTopic + okafka.ProjectorDLQSuffix})
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "projector") {
		t.Fatalf("ListDeadLetters of the projector's topic: %v, want InvalidArgument naming the projector", err)
	}
}
