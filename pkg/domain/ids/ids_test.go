package ids_test

import (
	"testing"

	"github.com/ordersys/ordersys/pkg/domain/ids"
)

func TestValid(t *testing.T) {
	cases := []struct {
		in   string
		want bool
	}{
		{"123e4567-e89b-12d3-a456-426614174000", true},
		{"123E4567-E89B-12D3-A456-426614174000", true},
		{"00000000-0000-0000-0000-000000000000", false}, // the nil UUID
		{ids.Nil, false},
		{"00000000-0000-0000-0000-000000000001", true},
		{" 123e4567-e89b-12d3-a456-426614174000", false}, // not trimmed: Canonical first
		{"", false},
		{"123e4567e89b12d3a456426614174000", false},      // no hyphens
		{"123e4567-e89b-12d3-a456-42661417400", false},   // short
		{"123e4567-e89b-12d3-a456-4266141740000", false}, // long
		{"123e4567-e89b-12d3-a456_426614174000", false},  // wrong separator
		{"123e4567-e89b-12d3-a456-42661417400g", false},  // not hex
		{"{123e4567-e89b-12d3-a456-426614174000}", false},
		{"123e456-7e89b-12d3-a456-426614174000", false}, // misplaced hyphen
	}
	for _, c := range cases {
		if got := ids.Valid(c.in); got != c.want {
			t.Errorf("Valid(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestNewIsUniqueCanonicalV4(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := ids.New()
		if !ids.Valid(id) || id[14] != '4' || !(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b') {
			t.Fatalf("New() = %q: not a canonical v4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("New() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestCanonical(t *testing.T) {
	if got := ids.Canonical(" 123E4567-E89B-12D3-A456-426614174000\n"); got != "123e4567-e89b-12d3-a456-426614174000" {
		t.Fatalf("Canonical = %q", got)
	}
}
