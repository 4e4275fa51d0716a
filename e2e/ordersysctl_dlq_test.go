package e2e_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gocql/gocql"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/domain/order"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// relayDeadLetters: a poison outbox row (bytes that are no event envelope) and an order too large
// for the relay are dead-lettered; `dlq list` finds them with each filter and a page at a time;
// `dlq show` shows one; `dlq redrive` refuses the poison (exit 1) and, while the relay's limit
// still refuses it, the large one (exit 1); the relay restarted with the limit raised (the
// runbook's fix), the large one is re-driven and reaches the read model; `dlq discard` deletes
// the poison; `cdc-relay dlq list|redrive` next to the database does the same.
func (o *ops) relayDeadLetters() {
	t, s := o.t, o.s
	topic := s.topics["Order"]
	poison, big := ids.New(), ids.New()
	poisonUUID, _ := gocql.ParseUUID(poison)
	if err := o.session.Query(`INSERT INTO outbox_messages (bucket, shard, id, aggregate_id, aggregate_type, sequence, event_id,
 event_type, schema_version, topic, partition_key, envelope, created_at) VALUES (?,?,now(),?,?,?,?,?,?,?,?,?,?)`,
		cql.Bucket(time.Now()), cql.ShardOf(poison), poisonUUID, "Order", int64(1), gocql.TimeUUID(), "OrderCreated", 1,
		topic, poison, []byte{0xde, 0xad, 0xbe, 0xef}, time.Now()).WithContext(o.ctx).Exec(); err != nil {
		t.Fatal(err)
	}
	var lines []*ordersv1.OrderItem
	for range order.MaxItems {
		lines = append(lines, &ordersv1.OrderItem{ProductId: ids.New(), Quantity: order.MaxQuantity, UnitPriceCents: order.MaxUnitPriceCents})
	}
	if _, err := s.orders.CreateOrder(o.ctx, &ordersv1.CreateOrderRequest{OrderId: big, CustomerId: o.customer, Items: lines}); err != nil {
		t.Fatal(err)
	}

	// The poison row's first dead letter. The relay's rescan cursor, 30 s behind, reads the row
	// again and dead-letters it once more (its aggregate has no stream to drop it by): later
	// dead letters of that aggregate are tolerated below, never of another.
	var poisonID, bigID string
	err := eventually(time.Minute, 500*time.Millisecond, func() error {
		dls, _ := o.deadLetters("dlq")
		for _, dl := range dls {
			switch {
			case dl.AggregateID == poison && poisonID == "":
				poisonID = dl.ID
			case dl.AggregateID == big:
				bigID = dl.ID
			}
		}
		if poisonID == "" || bigID == "" {
			return fmt.Errorf("%w: relay dead letters %+v", errNotYet, dls)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out := o.expect(0, "REASON", "dlq", "list")
	if !strings.Contains(out, poisonID) || !strings.Contains(out, bigID) || !strings.Contains(out, "exceeds the limit") {
		t.Errorf("dlq list:\n%s", out)
	}
	repeats := func(dls []deadLetter) []deadLetter { // the poison row's later dead letters, left out
		return slices.DeleteFunc(slices.Clone(dls), func(dl deadLetter) bool { return dl.AggregateID == poison && dl.ID != poisonID })
	}
	for _, f := range []struct {
		args []string
		want []string
	}{
		{[]string{"-aggregate", big}, []string{bigID}},
		{[]string{"-reason", "TOO LARGE"}, []string{bigID}},
		{[]string{"-topic", topic, "-since", "10m"}, []string{poisonID, bigID}},
		{[]string{"-aggregate", poison, "-reason", "undecodable envelope"}, []string{poisonID}},
		{[]string{"-since", time.Now().Add(time.Hour).Format(time.RFC3339)}, nil},
		{[]string{"-until", "1h"}, nil},
		{[]string{"-topic", s.topics["Customer"]}, nil},
	} {
		dls, _ := o.deadLetters("dlq", f.args...)
		var got []string
		for _, dl := range repeats(dls) {
			got = append(got, dl.ID)
		}
		slices.Sort(got)
		slices.Sort(f.want)
		if !slices.Equal(got, f.want) {
			t.Errorf("dlq list %v: %v, want %v", f.args, got, f.want)
		}
	}
	got := o.pages("dlq")
	if !slices.Contains(got, poisonID) || !slices.Contains(got, bigID) || len(slices.Compact(slices.Sorted(slices.Values(got)))) != len(got) {
		t.Errorf("dlq list -limit 1 page by page: %v, want %s and %s, each id once", got, poisonID, bigID)
	}
	o.expect(2, "-since", "dlq", "list", "-since", "yesterday")
	o.expect(2, "projector", "dlq", "list", "-topic", topic+".projector.dlq")

	if out := o.expect(0, poison, "dlq", "show", poisonID); !regexp.MustCompile(`(?m)^bytes\s+4$`).MatchString(out) {
		t.Errorf("dlq show of the poison row: want its 4 bytes\n%s", out)
	}
	o.expect(0, fmt.Sprintf("exceeds the limit of %d bytes", opsRelayMaxBytes), "dlq", "show", "-topic", topic, bigID)
	o.expect(1, "cannot be re-driven", "dlq", "redrive", poisonID)
	o.expect(1, "refuses dead letter", "dlq", "redrive", bigID)
	// Never published, so never projected: the query service waits for it, then answers unavailable.
	o.expect(5, "", "-timeout", "3s", "order", "get", big)

	// The runbook's fix: raise the relay's limit (restart it), then re-drive.
	s.instanceEnv["cdc-relay"] = append(s.instanceEnv["cdc-relay"], "ORDERSYS_KAFKA_MAX_MESSAGE_BYTES=1000000")
	if unclean := s.terminate(s.procs["cdc-relay"]); len(unclean) > 0 {
		t.Fatalf("cdc-relay: not a clean stop: %v", unclean)
	}
	if err := s.launch("cdc-relay"); err != nil {
		t.Fatal(err)
	}
	if err := s.waitServing("cdc-relay"); err != nil {
		t.Fatal(err)
	}
	// Every dead letter of that cause at once (the poison's reason differs: left alone), then the
	// same one alone again (a second publish: consumers drop it by sequence).
	o.expect(0, "1/1 re-driven  0 failed", "dlq", "redrive-all", "-reason", "exceeds the limit")
	o.expect(0, "0/0 re-driven", "dlq", "redrive-all", "-reason", "exceeds the limit")
	o.expect(0, fmt.Sprintf("re-drove %s: %s#1 to %s", bigID, big, topic), "dlq", "redrive", bigID)
	if err := eventually(time.Minute, 500*time.Millisecond, func() error {
		if out, code := s.ctl(t, "order", "get", big); code != 0 || !regexp.MustCompile(`(?m)^items\s+100$`).MatchString(out) {
			return fmt.Errorf("%w: order get %s: exit %d\n%s", errNotYet, big, code, out)
		}
		return nil
	}); err != nil {
		t.Fatalf("the re-driven order never reached the read model: %v", err)
	}
	if out := o.expect(0, bigID, "dlq", "show", bigID); !regexp.MustCompile(`(?m)^re-driven\s+\d{4}-\d\d-\d\dT`).MatchString(out) {
		t.Errorf("dlq show after the redrive: no re-driven time\n%s", out)
	}
	o.expect(0, "discarded "+poisonID, "dlq", "discard", "-topic", topic, poisonID)
	o.expect(3, "", "dlq", "show", poisonID)
	if dls, _ := o.deadLetters("dlq"); len(repeats(dls)) != 1 || repeats(dls)[0].ID != bigID || repeats(dls)[0].RedrivenAt == nil {
		t.Errorf("dlq list after the redrive and the discard: %+v, want %s re-driven", dls, bigID)
	} else if len(dls) > 1 {
		t.Logf("the relay dead-lettered the poison row %d times in all (its rescan cursor read it again)", len(dls))
	}

	// Next to the database, without the relay's admin API.
	relayCmd := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(o.ctx, filepath.Join(s.binDir, "cdc-relay"), args...)
		cmd.Env = append(s.serviceEnv("cdc-relay"), "ORDERSYS_KAFKA_MAX_MESSAGE_BYTES=1000000")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("cdc-relay %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := relayCmd("dlq", "list"); !strings.Contains(out, bigID) || strings.Contains(out, poisonID) {
		t.Errorf("cdc-relay dlq list: want %s only\n%s", bigID, out)
	}
	if out := relayCmd("dlq", "redrive", bigID); !strings.Contains(out, "re-drove "+bigID) {
		t.Errorf("cdc-relay dlq redrive %s:\n%s", bigID, out)
	}

	// The relay status, as a table; an order's history a page at a time.
	o.expect(0, "BREAKER", "relay", "status")
	if _, err := s.orders.ConfirmOrder(o.ctx, &ordersv1.ConfirmOrderRequest{OrderId: big}); err != nil {
		t.Fatal(err)
	}
	if out := o.expect(0, "OrderCreated", "order", "history", "-limit", "1", big); !strings.Contains(out, "(more: raise -limit)") {
		t.Errorf("order history -limit 1 of an order with 2 events: no hint of more\n%s", out)
	}
}

// projectorDeadLetters: an undecodable message on the order topic and an order whose read-model
// row cannot be read are dead-lettered by the projector; `projector-dlq list` finds them with
// the filters and a page at a time; show; redrive refuses the undecodable one (exit 1) and,
// once the row is repaired, re-drives the other to the event topic, whence it reaches the read
// model; discard deletes the undecodable one.
func (o *ops) projectorDeadLetters() {
	t, s := o.t, o.s
	topic := s.topics["Order"]
	garbage, unreadable := ids.New(), ids.New()
	w := &kafkago.Writer{Addr: kafkago.TCP(s.brokers...), Topic: topic, Balancer: &kafkago.Hash{}, RequiredAcks: kafkago.RequireAll}
	defer w.Close()
	if err := w.WriteMessages(o.ctx, kafkago.Message{Key: []byte(garbage), Value: []byte("not an event envelope")}); err != nil {
		t.Fatal(err)
	}
	// A row planted before the order exists, at write timestamp 0: below every projector write
	// (docs/read-models.md), so its deletion at 0 later removes it and nothing else.
	id, _ := gocql.ParseUUID(unreadable)
	if err := o.session.Query(`INSERT INTO order_read_model (order_id, version, items) VALUES (?, 1, '{not json') USING TIMESTAMP 0`, id).
		WithContext(o.ctx).Exec(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.orders.CreateOrder(o.ctx, &ordersv1.CreateOrderRequest{OrderId: unreadable, CustomerId: o.customer, Items: items(4)}); err != nil {
		t.Fatal(err)
	}

	var garbageID, unreadableID string
	err := eventually(time.Minute, 500*time.Millisecond, func() error {
		dls, _ := o.deadLetters("projector-dlq")
		for _, dl := range dls {
			switch {
			case dl.AggregateID == garbage && strings.Contains(dl.Reason, "undecodable"):
				garbageID = dl.ID
			case dl.AggregateID == unreadable && strings.Contains(dl.Reason, "unreadable_row"):
				unreadableID = dl.ID
			}
		}
		if garbageID == "" || unreadableID == "" || len(dls) != 2 {
			return fmt.Errorf("%w: projector dead letters %+v", errNotYet, dls)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		args []string
		want []string
	}{
		{nil, []string{garbageID, unreadableID}},
		{[]string{"-aggregate", garbage}, []string{garbageID}},
		{[]string{"-reason", "unreadable_row"}, []string{unreadableID}},
		{[]string{"-topic", topic + ".projector.dlq", "-since", "10m", "-until", time.Now().Add(time.Minute).Format(time.RFC3339)}, []string{garbageID, unreadableID}},
		{[]string{"-until", "1h"}, nil},
	} {
		dls, _ := o.deadLetters("projector-dlq", f.args...)
		var got []string
		for _, dl := range dls {
			got = append(got, dl.ID)
		}
		slices.Sort(got)
		slices.Sort(f.want)
		if !slices.Equal(got, f.want) {
			t.Errorf("projector-dlq list %v: %v, want %v", f.args, got, f.want)
		}
	}
	if got := o.pages("projector-dlq", "-topic", topic); len(got) != 2 || !slices.Contains(got, garbageID) || !slices.Contains(got, unreadableID) {
		t.Errorf("projector-dlq list -limit 1 page by page: %v, want %s and %s once each", got, garbageID, unreadableID)
	}
	o.expect(2, "topic", "projector-dlq", "list", "-topic", topic+".dlq")

	if out := o.expect(0, "undecodable", "projector-dlq", "show", garbageID); !regexp.MustCompile(`(?m)^bytes\s+21$`).MatchString(out) {
		t.Errorf("projector-dlq show: want the message's 21 bytes\n%s", out)
	}
	o.expect(1, "cannot be re-driven", "projector-dlq", "redrive", garbageID)
	if out, code := s.ctl(t, "order", "get", unreadable); code == 0 {
		t.Errorf("order get of the order with an unreadable row: exit 0\n%s", out)
	}

	// The cause fixed (the row removed), the dead letter goes to the event topic again.
	if err := o.session.Query(`DELETE FROM order_read_model USING TIMESTAMP 0 WHERE order_id = ?`, id).WithContext(o.ctx).Exec(); err != nil {
		t.Fatal(err)
	}
	o.expect(5, "", "-timeout", "3s", "order", "get", unreadable) // stored, not yet projected
	o.expect(0, "re-drove "+unreadableID, "projector-dlq", "redrive", "-topic", topic, unreadableID)
	if err := eventually(time.Minute, 500*time.Millisecond, func() error {
		if out, code := s.ctl(t, "order", "get", unreadable); code != 0 || !strings.Contains(out, "ORDER_STATUS_CREATED") {
			return fmt.Errorf("%w: order get %s: exit %d\n%s", errNotYet, unreadable, code, out)
		}
		return nil
	}); err != nil {
		t.Fatalf("the re-driven event never reached the read model: %v", err)
	}
	if out := o.expect(0, unreadableID, "projector-dlq", "show", unreadableID); !regexp.MustCompile(`(?m)^re-driven\s+\d{4}-\d\d-\d\dT`).MatchString(out) {
		t.Errorf("projector-dlq show after the redrive: no re-driven time\n%s", out)
	}
	o.expect(0, "discarded "+garbageID, "projector-dlq", "discard", "-topic", topic, garbageID)
	o.expect(3, "", "projector-dlq", "show", garbageID)
	if dls, _ := o.deadLetters("projector-dlq"); len(dls) != 1 || dls[0].ID != unreadableID || dls[0].RedrivenAt == nil {
		t.Errorf("projector-dlq list after the redrive and the discard: %+v, want %s re-driven", dls, unreadableID)
	}
}
