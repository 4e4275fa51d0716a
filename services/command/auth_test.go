package command_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ordersys/ordersys/pkg/config"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/grpcx"
	"github.com/ordersys/ordersys/pkg/grpcx/grpcxtest"
)

// TestAuthenticatedCommands runs the command service with TLS and tokens on, as the production
// example configures it: a writer's command is recorded with the token's subject as the user
// (whatever x-user-id says), a reader may not issue commands, and no token is Unauthenticated.
func TestAuthenticatedCommands(t *testing.T) {
	e := env(t)
	p := grpcxtest.NewPKI(t)
	p.Issue(t, "server", true)
	iss := grpcxtest.NewIssuer(t, t.TempDir(), "k1")
	sec := config.GRPCServer{TLSCertFile: p.Path("server.pem"), TLSKeyFile: p.Path("server-key.pem"),
		AuthJWKSFile: iss.JWKS, AuthAudience: "ordersys", AuthRolesClaim: "roles"}
	creds, err := grpcx.ClientTLS(p.Path("ca.pem"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, serverOptions{GRPC: &sec}, grpc.WithTransportCredentials(creds))
	as := func(token string) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token, "x-user-id", "mallory")
	}
	hour := time.Now().Add(time.Hour)

	id := ids.New()
	resp, err := s.cc.RegisterCustomer(as(iss.Token(t, "alice", "ordersys", hour, "writer")), &ordersv1.RegisterCustomerRequest{
		CustomerId: id, Email: "alice@example.com", FirstName: "Alice", LastName: "Doe"})
	if err != nil {
		t.Fatal(err)
	}
	if evs := loadEvents(t, e.store, id); len(evs) != 1 || evs[0].UserID != "alice" || evs[0].EventID != resp.GetEventIds()[0] {
		t.Fatalf("events %+v: want one, by user alice (the token's subject, not x-user-id)", evs)
	}
	_, err = s.cc.SuspendCustomer(as(iss.Token(t, "bob", "ordersys", hour, "reader")), &ordersv1.SuspendCustomerRequest{CustomerId: id, Reason: "x"})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("reader's command: %v, want PermissionDenied", err)
	}
	// Erasure needs the admin role: a writer may not erase, an admin may.
	_, err = s.cc.EraseCustomer(as(iss.Token(t, "carol", "ordersys", hour, "writer")), &ordersv1.EraseCustomerRequest{CustomerId: id})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("writer's erasure: %v, want PermissionDenied", err)
	}
	if _, err := s.cc.EraseCustomer(as(iss.Token(t, "dave", "ordersys", hour, "admin")), &ordersv1.EraseCustomerRequest{CustomerId: id}); err != nil {
		t.Fatalf("admin's erasure: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.cc.SuspendCustomer(ctx, &ordersv1.SuspendCustomerRequest{CustomerId: id, Reason: "x"}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v, want Unauthenticated", err)
	}
}
