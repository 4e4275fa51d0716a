// Package check holds the field checks the domain's Validate methods share: each records an
// es.Violation for a field instead of returning an error, so one Validate call reports every bad
// field. It uses only the standard library, pkg/es and pkg/domain/ids.
package check

import (
	"strings"
	"unicode/utf8"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
)

// UUID records a violation unless s is an identifier (see ids.Valid), and reports whether it
// is one. Callers pass the id in canonical form (ids.Canonical).
func UUID(v *es.Violations, field, s string) bool {
	switch {
	case s == "":
		v.Add(field, "is required")
	case !ids.Valid(s):
		v.Addf(field, "%s, got %q", ids.Reason, truncate(s))
	default:
		return true
	}
	return false
}

// Text records a violation when s, trimmed, is missing but required, is not UTF-8, or is longer
// than max characters.
func Text(v *es.Violations, field, s string, max int, required bool) {
	text(v, field, s, max, required, false)
}

// PlainText is Text that also records a violation when s, trimmed, holds a control character
// (U+0000 to U+001F, tab and newline included, or U+007F).
func PlainText(v *es.Violations, field, s string, max int, required bool) {
	text(v, field, s, max, required, true)
}

// text records the first violation it finds, in the order the cases are listed.
func text(v *es.Violations, field, s string, max int, required, plain bool) {
	s = strings.TrimSpace(s)
	switch {
	case !utf8.ValidString(s):
		v.Add(field, "must be valid UTF-8")
	case s == "" && required:
		v.Add(field, "is required")
	case utf8.RuneCountInString(s) > max:
		v.Addf(field, "must be at most %d characters, got %d", max, utf8.RuneCountInString(s))
	case plain && strings.ContainsFunc(s, isControl):
		v.Add(field, "must not contain control characters")
	}
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// truncate shortens an echoed input so an error message stays readable.
func truncate(s string) string {
	if len(s) <= 40 {
		return s
	}
	return s[:40] + "…"
}
