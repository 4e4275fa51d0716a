package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"google.golang.org/grpc/codes"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
)

// TestErasure is the right to erasure on the running system (docs/privacy.md): a customer
// registers, changes its e-mail, adds an address and orders; the event store and both topics
// never hold its personal data in clear (it is sealed with the customer's data key). Then an
// admin erases it: GetCustomer shows it ERASED without personal fields, its order rows lose the
// customer's e-mail and name but keep everything else, commands on it fail with
// FAILED_PRECONDITION, history and GetCustomerAt show the personal fields as erased, and every
// table of the keyspace and every record of both topics is free of its personal data, byte for
// byte; so are the customers and orders projections rebuilt from the topics.
func TestErasure(t *testing.T) {
	s := getSystem(t)
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpLogs(t, 40)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	call := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, callTimeout) }
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	tag := randomHex(4)
	id, orderID := ids.New(), ids.New()
	p := struct{ email, newEmail, first, last, phone, street string }{
		"erase-" + tag + "@example.com", "erased-" + tag + "@example.org", "Zelda" + tag, "Forgotten" + tag,
		fmt.Sprintf("+4930%07d", rand.IntN(10_000_000)), "Vergessenweg " + tag,
	}
	personal := []string{p.email, p.newEmail, p.first, p.last, p.phone, p.street}

	c, done := call()
	_, err := s.customers.RegisterCustomer(c, &ordersv1.RegisterCustomerRequest{CustomerId: id, Email: p.email, FirstName: p.first, LastName: p.last, Phone: p.phone})
	must("RegisterCustomer", err)
	_, err = s.customers.ChangeEmail(c, &ordersv1.ChangeEmailRequest{CustomerId: id, Email: p.newEmail})
	must("ChangeEmail", err)
	_, err = s.customers.AddAddress(c, &ordersv1.AddAddressRequest{CustomerId: id, Address: &ordersv1.Address{
		AddressId: ids.New(), Line1: p.street, City: "Berlin", PostalCode: "10117", CountryCode: "DE"}})
	must("AddAddress", err)
	orderItems := items(7)
	_, err = s.orders.CreateOrder(c, &ordersv1.CreateOrderRequest{OrderId: orderID, CustomerId: id, Items: orderItems})
	must("CreateOrder", err)
	_, err = s.orders.ConfirmOrder(c, &ordersv1.ConfirmOrderRequest{OrderId: orderID})
	must("ConfirmOrder", err)
	done()

	// The projector decrypts: the read models show the customer's data before the erasure.
	must("projected before erasure", eventually(convergeTimeout, pollEvery, func() error {
		c, done := call()
		defer done()
		cu, err := s.custQuery.GetCustomer(c, &ordersv1.GetCustomerRequest{CustomerId: id})
		if err != nil || cu.GetCustomer().GetEmail() != p.newEmail || cu.GetCustomer().GetVersion() != 3 {
			return fmt.Errorf("customer %v, %v", cu, err)
		}
		o, err := s.query.GetOrder(c, &ordersv1.GetOrderRequest{OrderId: orderID})
		if err != nil || o.GetOrder().GetCustomerEmail() != p.newEmail || o.GetOrder().GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_CONFIRMED {
			return fmt.Errorf("order %v, %v", o, err)
		}
		return nil
	}))

	session, err := cql.Connect(cql.SessionConfig{Hosts: s.cqlHosts(), Keyspace: s.keyspace, Consistency: "QUORUM", Timeout: 30 * time.Second})
	must("connect", err)
	defer session.Close()
	// Encrypted from the start: the log and the topics hold no personal data in clear. The
	// read models do (the scan sees them: it would see any other table that did).
	scanEventLog(ctx, t, s, session, id, personal)
	if _, found := scanKeyspace(ctx, t, session, s.keyspace, personal); found["customer_read_model"] == "" || found["order_read_model"] == "" {
		t.Fatalf("before erasure the scan found personal data in %v; want the customer and order read models among them", keysOf(found))
	}

	c, done = call()
	erased, err := s.customers.EraseCustomer(c, &ordersv1.EraseCustomerRequest{CustomerId: id})
	done()
	must("EraseCustomer", err)
	if erased.GetVersion() != 4 {
		t.Fatalf("EraseCustomer: version %d, want 4", erased.GetVersion())
	}

	// The read models drop the personal data; the order stays, for accounting.
	must("projected after erasure", eventually(convergeTimeout, pollEvery, func() error {
		c, done := call()
		defer done()
		cu, err := s.custQuery.GetCustomer(c, &ordersv1.GetCustomerRequest{CustomerId: id})
		got := cu.GetCustomer()
		if err != nil || got.GetStatus() != ordersv1.CustomerStatus_CUSTOMER_STATUS_ERASED || got.GetVersion() != 4 {
			return fmt.Errorf("customer %v, %v", cu, err)
		}
		if got.GetEmail() != "" || got.GetFirstName() != "" || got.GetLastName() != "" || got.GetPhone() != "" || len(got.GetAddresses()) != 0 ||
			got.GetCustomerId() != id || got.GetCreatedAt() == nil || got.GetUpdatedAt() == nil {
			return fmt.Errorf("erased customer %v", got)
		}
		o, err := s.query.GetOrder(c, &ordersv1.GetOrderRequest{OrderId: orderID})
		og := o.GetOrder()
		if err != nil || og.GetCustomerEmail() != "" || og.GetCustomerName() != "" {
			return fmt.Errorf("order %v, %v", o, err)
		}
		if og.GetCustomerId() != id || og.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_CONFIRMED || og.GetTotalCents() != total(orderItems) || len(og.GetItems()) != len(orderItems) {
			return fmt.Errorf("order after erasure lost its accounting data: %v", og)
		}
		return nil
	}))

	c, done = call()
	_, err = s.customers.ChangeEmail(c, &ordersv1.ChangeEmailRequest{CustomerId: id, Email: "again-" + tag + "@example.com"})
	wantCode(t, "ChangeEmail of an erased customer", err, codes.FailedPrecondition)
	_, err = s.orders.CreateOrder(c, &ordersv1.CreateOrderRequest{OrderId: ids.New(), CustomerId: id, Items: items(1)})
	wantCode(t, "CreateOrder of an erased customer", err, codes.FailedPrecondition)
	h, err := s.custQuery.GetCustomerHistory(c, &ordersv1.GetCustomerHistoryRequest{CustomerId: id})
	must("GetCustomerHistory", err)
	if len(h.GetEvents()) != 4 || !strings.Contains(h.GetEvents()[0].GetPayloadJson(), codec.ErasedMarker) {
		t.Errorf("history after erasure: %v", h)
	}
	for _, ev := range h.GetEvents() {
		noPersonalData(t, "GetCustomerHistory "+ev.GetEventType(), []byte(ev.GetPayloadJson()), personal)
	}
	at, err := s.custQuery.GetCustomerAt(c, &ordersv1.GetCustomerAtRequest{CustomerId: id, Point: &ordersv1.GetCustomerAtRequest_Version{Version: 2}})
	must("GetCustomerAt", err)
	if at.GetCustomer().GetEmail() != codec.ErasedMarker || at.GetCustomer().GetVersion() != 2 {
		t.Errorf("GetCustomerAt version 2 after erasure: %v", at)
	}
	done()

	scanEventLog(ctx, t, s, session, id, personal)
	n := wantNoneInKeyspace(ctx, t, session, s.keyspace, personal)
	t.Logf("after erasure: %d rows of every table in keyspace %s hold none of the customer's personal data", n, s.keyspace)

	// The migration of customers written in clear (migrate reseal-pii) finds none here: every
	// customer of this system, of every test, was encrypted from its first event.
	rctx, rcancel := context.WithTimeout(ctx, 2*time.Minute)
	rc := exec.CommandContext(rctx, filepath.Join(s.binDir, "migrate"), "reseal-pii")
	rc.Env = append(s.serviceEnv("migrate"), "ORDERSYS_PII_KEK_FILE="+s.kekFile)
	out, err := rc.CombinedOutput()
	rcancel()
	if err != nil || !strings.Contains(string(out), "reseal-pii finished") || !strings.Contains(string(out), " 0 events sealed, 0 events of erased customers stripped") {
		t.Errorf("migrate reseal-pii: %v\n%s", err, out)
	}

	// Rebuild both projections from the topics (then switch back, as TestOrdersysctl expects the
	// first versions active): the rebuilt tables hold no personal data of the customer either.
	for _, projection := range []string{"customers", "orders"} {
		out, code := s.ctl(t, "projector", "rebuild", "-source", "topics", projection)
		if code != 0 || !strings.Contains(out, "readers switched to it") {
			t.Fatalf("projector rebuild -source topics %s: exit %d\n%s", projection, code, out)
		}
	}
	c, done = call()
	cu, err := s.custQuery.GetCustomer(c, &ordersv1.GetCustomerRequest{CustomerId: id})
	done()
	if err != nil || cu.GetCustomer().GetStatus() != ordersv1.CustomerStatus_CUSTOMER_STATUS_ERASED || cu.GetCustomer().GetEmail() != "" {
		t.Errorf("GetCustomer from the rebuilt projection: %v, %v", cu, err)
	}
	n = wantNoneInKeyspace(ctx, t, session, s.keyspace, personal)
	t.Logf("after the rebuilds from the topics: %d rows, no personal data", n)
	for _, projection := range []string{"customers", "orders"} {
		if out, code := s.ctl(t, "projector", "switch-back", projection); code != 0 {
			t.Errorf("projector switch-back %s: exit %d\n%s", projection, code, out)
		}
	}
}

// noPersonalData fails t when b holds any of the personal strings.
func noPersonalData(t *testing.T, what string, b []byte, personal []string) {
	t.Helper()
	for _, p := range personal {
		if bytes.Contains(b, []byte(p)) {
			t.Errorf("%s holds %q in clear", what, p)
		}
	}
}

// scanEventLog checks the customer's event store rows, the outbox and every record of both
// topics (value, key and headers) for the personal data.
func scanEventLog(ctx context.Context, t *testing.T, s *system, session *gocql.Session, id string, personal []string) {
	t.Helper()
	iter := session.Query(`SELECT sequence, payload FROM event_store WHERE aggregate_id = ?`, id).WithContext(ctx).Iter()
	var (
		seq     int64
		payload []byte
		rows    int
	)
	for iter.Scan(&seq, &payload) {
		noPersonalData(t, fmt.Sprintf("event_store %s#%d", id, seq), payload, personal)
		rows++
	}
	if err := iter.Close(); err != nil || rows == 0 {
		t.Fatalf("event_store rows of %s: %d, %v", id, rows, err)
	}
	for _, topic := range []string{s.topics["Customer"], s.topics["Order"]} {
		msgs, err := okafka.ReadTopic(ctx, okafka.Cluster{Brokers: s.brokers}, topic)
		if err != nil {
			t.Fatalf("read %s: %v", topic, err)
		}
		mine := 0
		for _, m := range msgs {
			if string(m.Key) == id {
				mine++
			}
			what := fmt.Sprintf("%s[%d]@%d", topic, m.Partition, m.Offset)
			noPersonalData(t, what+" value", m.Value, personal)
			noPersonalData(t, what+" key", m.Key, personal)
			for _, h := range m.Headers {
				noPersonalData(t, what+" header "+h.Key, h.Value, personal)
			}
		}
		if topic == s.topics["Customer"] && mine < 3 {
			t.Errorf("%s holds %d records of customer %s, want at least 3", topic, mine, id)
		}
		// The same through kcat, the way an outside consumer without key access reads it.
		dump, err := s.kcatDump(topic)
		if err != nil {
			t.Fatal(err)
		}
		if topic == s.topics["Customer"] && !bytes.Contains(dump, []byte(id)) {
			t.Errorf("kcat read of %s shows no record of customer %s: the scan below would see nothing", topic, id)
		}
		noPersonalData(t, "kcat read of "+topic, dump, personal)
	}
}

// wantNoneInKeyspace fails t when a column of a row of a table of the keyspace holds one of the
// personal strings; it returns the number of rows read.
func wantNoneInKeyspace(ctx context.Context, t *testing.T, session *gocql.Session, keyspace string, personal []string) int {
	t.Helper()
	rows, found := scanKeyspace(ctx, t, session, keyspace, personal)
	for where, what := range found {
		t.Errorf("%s holds %q in clear", where, what)
	}
	return rows
}

// scanKeyspace reads every row of every table of the keyspace and returns the number of rows
// read and, by table name without its version suffix ("_v2") and by "table.column", the
// personal strings found in clear.
func scanKeyspace(ctx context.Context, t *testing.T, session *gocql.Session, keyspace string, personal []string) (int, map[string]string) {
	t.Helper()
	var tables []string
	iter := session.Query(`SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?`, keyspace).WithContext(ctx).Iter()
	var name string
	for iter.Scan(&name) {
		tables = append(tables, name)
	}
	if err := iter.Close(); err != nil || len(tables) == 0 {
		t.Fatalf("tables of %s: %v, %v", keyspace, tables, err)
	}
	rows, found := 0, map[string]string{}
	for _, table := range tables {
		it := session.Query(`SELECT * FROM ` + table).WithContext(ctx).PageSize(1000).Iter()
		for {
			row := map[string]any{}
			if !it.MapScan(row) {
				break
			}
			rows++
			for col, v := range row {
				var b []byte
				switch v := v.(type) {
				case []byte:
					b = v
				case string:
					b = []byte(v)
				default:
					b = fmt.Appendf(nil, "%v", v)
				}
				for _, p := range personal {
					if bytes.Contains(b, []byte(p)) {
						found[table+"."+col] = p
						found[versionless.ReplaceAllString(table, "")] = p
					}
				}
			}
		}
		if err := it.Close(); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("scan %s: %v", table, err)
		}
	}
	return rows, found
}

// versionless matches the version suffix of a read-model table.
var versionless = regexp.MustCompile(`_v[0-9]+$`)
