package check_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ordersys/ordersys/pkg/domain/check"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
)

func TestUUID(t *testing.T) {
	long := strings.Repeat("x", 50)
	cases := []struct {
		in     string
		ok     bool
		reason string
	}{
		{"123e4567-e89b-12d3-a456-426614174000", true, ""},
		{"", false, "is required"},
		{"nope", false, ids.Reason + `, got "nope"`},
		{ids.Nil, false, ids.Reason + `, got "` + ids.Nil + `"`},
		{long, false, ids.Reason + `, got "` + long[:40] + `…"`},
	}
	for _, c := range cases {
		var v es.Violations
		if got := check.UUID(&v, "id", c.in); got != c.ok {
			t.Errorf("UUID(%q) = %v, want %v", c.in, got, c.ok)
		}
		assertViolation(t, v, "id", c.reason)
	}
}

func TestText(t *testing.T) {
	cases := []struct {
		in        string
		required  bool
		text      string // reason from Text, "" for none
		plainText string // reason from PlainText, "" for none
	}{
		{"ok", true, "", ""},
		{"  ", true, "is required", "is required"},
		{"", false, "", ""},
		{"abcde", false, "", ""},
		{" héllo ", false, "", ""}, // 5 characters once trimmed, 6 bytes
		{"abcdef", false, "must be at most 5 characters, got 6", "must be at most 5 characters, got 6"},
		{"a\xffb", false, "must be valid UTF-8", "must be valid UTF-8"},
		{"a\tb", false, "", "must not contain control characters"},
		{"a\x7fb", false, "", "must not contain control characters"},
		{"\n ab \n", false, "", ""}, // trimmed first
	}
	for _, c := range cases {
		var v es.Violations
		check.Text(&v, "f", c.in, 5, c.required)
		assertViolation(t, v, "f", c.text)
		v = nil
		check.PlainText(&v, "f", c.in, 5, c.required)
		assertViolation(t, v, "f", c.plainText)
	}
}

// assertViolation checks that v holds exactly one violation of field with reason, or none when
// reason is "".
func assertViolation(t *testing.T, v es.Violations, field, reason string) {
	t.Helper()
	var want es.Violations
	if reason != "" {
		want.Add(field, reason)
	}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("violations %v, want %v", v, want)
	}
}
