package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// checkSecureFlows drives, on the secure system (mutual TLS and tokens on every service), what
// the plaintext e2e test drives besides an order's life: the rules and a repeated command at the
// edge, a list read, the admin services' role, and ordersysctl over mutual TLS with a token
// file. delivered is an order the caller took to DELIVERED; bearer makes a token's credentials
// for roles; creds are the client's TLS credentials; pkiPath names the development PKI's files.
func checkSecureFlows(t *testing.T, s *system, delivered *orderModel, bearer func(roles ...string) credentials.PerRPCCredentials,
	creds credentials.TransportCredentials, pkiPath func(string) string) {
	t.Helper()
	ctx := context.Background()

	// The rules answer through TLS and tokens as they do in plaintext.
	cctx, cancel, _ := withCorr(ctx)
	_, err := s.orders.CancelOrder(cctx, &ordersv1.CancelOrderRequest{OrderId: delivered.id, Reason: "too late"})
	wantCode(t, "CancelOrder on a DELIVERED order", err, codes.FailedPrecondition)
	_, err = s.orders.ConfirmOrder(cctx, &ordersv1.ConfirmOrderRequest{OrderId: ids.New()})
	wantCode(t, "ConfirmOrder on an unknown order", err, codes.NotFound)
	_, err = s.orders.CreateOrder(cctx, &ordersv1.CreateOrderRequest{OrderId: "not-a-uuid", CustomerId: delivered.customer, Items: items(1)})
	wantCode(t, "CreateOrder with a bad order id", err, codes.InvalidArgument)
	cancel()

	// A repeated command returns the first outcome.
	d := &driver{t: t, s: s, ctx: ctx}
	m := &orderModel{id: ids.New(), customer: delivered.customer}
	d.create(m, 7)
	cmdID := ids.New()
	for i := range 2 {
		cctx, cancel, _ := withCorr(ctx)
		resp, err := s.orders.ConfirmOrder(cctx, &ordersv1.ConfirmOrderRequest{OrderId: m.id, CommandId: cmdID})
		cancel()
		if err != nil || resp.GetVersion() != 2 {
			t.Fatalf("ConfirmOrder %d with command_id %s: version %d, %v; want version 2", i+1, cmdID, resp.GetVersion(), err)
		}
	}

	// The customer's orders are listed, both of them, once the projector has them.
	if err := eventually(30*time.Second, 200*time.Millisecond, func() error {
		lctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		r, err := s.query.ListOrdersByCustomer(lctx, &ordersv1.ListOrdersByCustomerRequest{CustomerId: delivered.customer, PageSize: 10})
		if err != nil {
			return err
		}
		found := map[string]bool{}
		for _, o := range r.GetOrders() {
			found[o.GetOrderId()] = true
		}
		if !found[delivered.id] || !found[m.id] {
			return fmt.Errorf("listed %v, want %s and %s", found, delivered.id, m.id)
		}
		return nil
	}); err != nil {
		t.Errorf("ListOrdersByCustomer over TLS: %v", err)
	}

	// The admin services need the admin role.
	for _, c := range []struct {
		what  string
		roles []string
		want  codes.Code
	}{{"a writer's token", []string{"writer"}, codes.PermissionDenied}, {"an admin's token", []string{"admin"}, codes.OK}} {
		conn, err := grpc.NewClient(s.grpcAddr["cdc-relay"], grpc.WithTransportCredentials(creds), grpc.WithPerRPCCredentials(bearer(c.roles...)))
		if err != nil {
			t.Fatal(err)
		}
		actx, cancel := context.WithTimeout(ctx, callTimeout)
		_, err = ordersv1.NewRelayAdminServiceClient(conn).GetRelayStatus(actx, &ordersv1.GetRelayStatusRequest{})
		cancel()
		_ = conn.Close()
		wantCode(t, "GetRelayStatus with "+c.what, err, c.want)
	}

	// ordersysctl over mutual TLS with a token file.
	tokenFile := filepath.Join(t.TempDir(), "token-admin")
	md, err := bearer("admin", "reader").GetRequestMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte(strings.TrimPrefix(md["authorization"], "Bearer ")), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsArgs := []string{"-ca", pkiPath("ca.pem"), "-cert", pkiPath("client.pem"), "-key", pkiPath("client-key.pem"), "-token-file", tokenFile}
	if out, code := s.ctl(t, append(tlsArgs, "-o", "json", "relay", "status")...); code != 0 || !strings.Contains(out, `"leader"`) {
		t.Errorf("ordersysctl relay status over mutual TLS: exit %d\n%s", code, out)
	}
	if out, code := s.ctl(t, append(tlsArgs, "order", "get", delivered.id)...); code != 0 || !strings.Contains(out, "ORDER_STATUS_DELIVERED") {
		t.Errorf("ordersysctl order get over mutual TLS: exit %d\n%s", code, out)
	}
	if out, code := s.ctl(t, "-ca", pkiPath("ca.pem"), "relay", "status"); code == 0 {
		t.Errorf("ordersysctl without a client certificate or token: exit 0\n%s", out)
	}
}
