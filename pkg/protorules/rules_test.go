package protorules_test

import (
	"testing"

	"github.com/ordersys/ordersys/pkg/protorules"
)

func TestParse(t *testing.T) {
	r, ok, err := protorules.Parse("The reason.\nRules: required; at most 500 characters; no control characters.\n")
	if err != nil || !ok || !r.Required || r.MaxChars != 500 || !r.Plain {
		t.Fatalf("got %+v %v %v", r, ok, err)
	}
	r, _, err = protorules.Parse("Rules: 1 to 100 items; each product_id at most once.")
	if err != nil || !r.HasItems || r.MinItems != 1 || r.MaxItems != 100 || r.UniqueField != "product_id" {
		t.Fatalf("got %+v %v", r, err)
	}
	r, _, err = protorules.Parse("Rules: 1 to 12 for a CARD, else 0.")
	if err != nil || !r.CardRange || r.Lo != 1 || r.Hi != 12 {
		t.Fatalf("got %+v %v", r, err)
	}
	if _, ok, err := protorules.Parse("No rules here."); ok || err != nil {
		t.Fatalf("no Rules line: ok %v err %v", ok, err)
	}
	// A clause the grammar does not know is an error: a comment cannot promise an unchecked rule.
	if _, _, err := protorules.Parse("Rules: required; must be polite."); err == nil {
		t.Fatal("unknown clause accepted")
	}
}

func TestLoadFindsEveryCommandRPC(t *testing.T) {
	methods, problems, err := protorules.Load("../../proto", "orders/v1/order_command.proto", "orders/v1/customer_command.proto")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	if len(methods) != 20 {
		t.Fatalf("%d RPCs, want 20", len(methods))
	}
	fields := 0
	for _, m := range methods {
		fields += len(m.Fields)
	}
	if fields < 60 {
		t.Fatalf("only %d ruled fields", fields)
	}
}
