package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// TestOrdersysctl runs the operators' CLI against the running system as an operator would:
// the relay's status, its dead letters, the projector's status and dead letters, an order and its history, a rebuild from
// the event store with a switch back, with the documented exit codes.
func TestOrdersysctl(t *testing.T) {
	s := getSystem(t)
	ctl := func(args ...string) (string, int) {
		t.Helper()
		return s.ctl(t, args...)
	}

	if err := eventually(30*time.Second, 500*time.Millisecond, func() error {
		out, code := ctl("-o", "json", "relay", "status")
		var st struct {
			Leader bool   `json:"leader"`
			Owner  string `json:"owner"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil || !st.Leader || st.Owner == "" {
			return errors.New("relay status: " + out)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if out, code := ctl("dlq", "list"); code != 0 || !strings.Contains(out, "REASON") {
		t.Errorf("dlq list: exit %d\n%s", code, out)
	}
	if out, code := ctl("projector-dlq", "list"); code != 0 || !strings.Contains(out, "REASON") {
		t.Errorf("projector-dlq list: exit %d\n%s", code, out)
	}
	out, code := ctl("-o", "json", "projector", "status")
	var ps struct {
		Projections []struct {
			Projection string `json:"projection"`
			Active     int    `json:"active"`
		} `json:"projections"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &ps) != nil || len(ps.Projections) != 2 || ps.Projections[0].Active < 1 {
		t.Errorf("projector status -o json: exit %d\n%s", code, out)
	}
	if out, code := ctl("projector", "abort-rebuild", "orders"); code != 1 || !strings.Contains(out, "no rebuild of orders runs") {
		t.Errorf("projector abort-rebuild without a rebuild: exit %d, want 1 (failed precondition)\n%s", code, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	customer, order := ids.New(), ids.New()
	if _, err := s.customers.RegisterCustomer(ctx, &ordersv1.RegisterCustomerRequest{CustomerId: customer,
		Email: "ctl-" + customer[:8] + "@example.com", FirstName: "Op", LastName: "Erator"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.orders.CreateOrder(ctx, &ordersv1.CreateOrderRequest{OrderId: order, CustomerId: customer, Items: items(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.query.GetOrder(ctx, &ordersv1.GetOrderRequest{OrderId: order, MinVersion: ptr(int64(1))}); err != nil {
		t.Fatal(err)
	}
	if out, code := ctl("order", "get", order); code != 0 || !strings.Contains(out, "ORDER_STATUS_CREATED") || !strings.Contains(out, customer) {
		t.Errorf("order get: exit %d\n%s", code, out)
	}
	out, code = ctl("-o", "json", "order", "history", order)
	var h struct {
		Events []struct {
			EventType string `json:"eventType"`
		} `json:"events"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &h) != nil || len(h.Events) != 1 || h.Events[0].EventType != "OrderCreated" {
		t.Errorf("order history -o json: exit %d\n%s", code, out)
	}
	if out, code := ctl("republish", "-topic", "e2e-republish-"+order[:8], order); code != 0 || !strings.Contains(out, "1 aggregates  1 events") || !strings.Contains(out, "done") {
		t.Errorf("republish of one order: exit %d\n%s", code, out)
	}
	// Rebuild the customers projection from the event store through the projector's admin API,
	// then undo it while the previous version is still written; it is not dropped meanwhile.
	if out, code := ctl("projector", "rebuild", "-source", "store", "customers"); code != 0 ||
		!strings.Contains(out, ": event store 100.0%") || !strings.Contains(out, "caught up, readers switched to it") {
		t.Errorf("projector rebuild -source store customers: exit %d\n%s", code, out)
	}
	if out, code := ctl("projector", "switch-back", "customers"); code != 0 || !strings.Contains(out, "is active again") {
		t.Errorf("projector switch-back customers: exit %d\n%s", code, out)
	}
	if out, code := ctl("projector", "drop-version", "customers", "1"); code != 1 || !strings.Contains(out, "schema") {
		t.Errorf("projector drop-version customers 1: exit %d, want 1 (failed precondition)\n%s", code, out)
	}
	if out, code := ctl("projector", "watch-rebuild", "customers"); code != 3 {
		t.Errorf("projector watch-rebuild with none running: exit %d, want 3 (not found)\n%s", code, out)
	}
	if out, code := ctl("order", "get", ids.New()); code != 3 {
		t.Errorf("order get of an unknown order: exit %d, want 3 (not found)\n%s", code, out)
	}
	if out, code := ctl("order", "get", "not-an-id"); code != 2 {
		t.Errorf("order get of a malformed id: exit %d, want 2\n%s", code, out)
	}
	if out, code := ctl("frobnicate"); code != 2 || !strings.Contains(out, "usage: ordersysctl") {
		t.Errorf("unknown command: exit %d\n%s", code, out)
	}
}

// ctl runs ordersysctl against the system and returns its output and exit code.
func (s *system) ctl(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	all := append([]string{"-relay", s.grpcAddr["cdc-relay"], "-query", s.grpcAddr["query"],
		"-projector", s.grpcAddr["projector"]}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, "ordersysctl"), all...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String() + errOut.String(), ee.ExitCode()
	default:
		t.Fatalf("ordersysctl %v: %v", args, err)
		return "", -1
	}
}
