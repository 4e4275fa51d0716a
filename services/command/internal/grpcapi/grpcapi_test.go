package grpcapi

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/services/command/internal/app"
)

func TestFingerprint(t *testing.T) {
	const create = ordersv1.OrderCommandService_CreateOrder_FullMethodName
	v := int64(3)
	base := &ordersv1.CreateOrderRequest{OrderId: "o", CustomerId: "c", Items: []*ordersv1.OrderItem{{ProductId: "p", Quantity: 2, UnitPriceCents: 5}}}
	withIDs := &ordersv1.CreateOrderRequest{OrderId: "o", CustomerId: "c", Items: []*ordersv1.OrderItem{{ProductId: "p", Quantity: 2, UnitPriceCents: 5}},
		CommandId: "cmd", ExpectedVersion: &v}
	other := &ordersv1.CreateOrderRequest{OrderId: "o", CustomerId: "c", Items: []*ordersv1.OrderItem{{ProductId: "p", Quantity: 3, UnitPriceCents: 5}}}

	fp := func(method string, req *ordersv1.CreateOrderRequest) string {
		t.Helper()
		s, err := Fingerprint(method, req)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a := fp(create, base)
	if len(a) != 64 {
		t.Fatalf("fingerprint %q is not hex SHA-256", a)
	}
	if b := fp(create, withIDs); b != a {
		t.Error("command_id and expected_version change the fingerprint")
	}
	if withIDs.CommandId != "cmd" || withIDs.ExpectedVersion == nil {
		t.Error("Fingerprint changed the request")
	}
	if fp(create, other) == a {
		t.Error("different content, same fingerprint")
	}
	if fp(ordersv1.OrderCommandService_UpdateOrderItems_FullMethodName, base) == a {
		t.Error("different method, same fingerprint")
	}
}

func TestRename(t *testing.T) {
	err := (&es.Violations{
		{Field: "cancelled_by", Reason: "too long"},
		{Field: "cancelled_byx", Reason: "kept"},
		{Field: "items[0].quantity", Reason: "kept"},
		{Field: "address.city", Reason: "renamed prefix"},
	}).Err()
	got := rename(err, map[string]string{"cancelled_by": "x-user-id", "address": "addr"})
	var ve *es.ValidationError
	if !errors.As(got, &ve) {
		t.Fatalf("not a validation error: %v", got)
	}
	var fields []string
	for _, f := range ve.Violations {
		fields = append(fields, f.Field)
	}
	want := []string{"x-user-id", "cancelled_byx", "items[0].quantity", "addr.city"}
	if !slices.Equal(fields, want) {
		t.Fatalf("fields %v, want %v", fields, want)
	}
	plain := errors.New("boom")
	if rename(plain, map[string]string{"a": "b"}) != plain {
		t.Fatal("a non-validation error was changed")
	}
}

func TestMetadataInterceptor(t *testing.T) {
	run := func(md metadata.MD) (app.Meta, error) {
		ctx := metadata.NewIncomingContext(context.Background(), md)
		var got app.Meta
		_, err := MetadataInterceptor()(ctx, nil, &grpc.UnaryServerInfo{}, func(ctx context.Context, _ any) (any, error) {
			got = MetaFromContext(ctx)
			return nil, nil
		})
		return got, err
	}
	m, err := run(metadata.Pairs(MetadataCorrelationID, "abc-1", MetadataUserID, " bob "))
	if err != nil || m.CorrelationID != "abc-1" || m.UserID != "bob" {
		t.Fatalf("%+v %v", m, err)
	}
	for _, bad := range []string{"", "has space", strings.Repeat("x", MaxCorrelationIDLen+1), "ünïcode"} {
		m, err := run(metadata.Pairs(MetadataCorrelationID, bad))
		if err != nil || m.CorrelationID == bad || len(m.CorrelationID) != 36 {
			t.Errorf("correlation id %q: got %+v %v, want a fresh UUID", bad, m, err)
		}
	}
	if _, err := run(metadata.Pairs(MetadataUserID, strings.Repeat("u", MaxUserIDLen+1))); !errors.Is(err, es.ErrInvalidArgument) {
		t.Errorf("long user id: %v", err)
	}
}
