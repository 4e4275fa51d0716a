// Package protorules makes the "Rules:" lines of the request field comments in proto/orders/v1
// executable, for the contract tests of the command and query services. A field's comment
// states what the server accepts on one line, clauses separated by semicolons:
//
//	// Rules: required; at most 100 characters; no control characters.
//
// Load compiles the .proto sources with their comments (protocompile) and returns, for every
// RPC, the rules of every field reachable from its request; Field.Probes derives the values at
// and just past each limit, and Field.RandomValid a random value the rules allow. The grammar is
// the clauses list below: a clause it does not know is an error, so a comment cannot promise a
// check that no test holds the server to.
package protorules

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Rules is what one field's "Rules:" line says.
type Rules struct {
	// Required: the zero value (empty, unset, UNSPECIFIED) is refused; Optional: it is accepted.
	Required, Optional bool
	// UUID: an identifier (pkg/domain/ids.Valid): canonical UUID, not the nil UUID.
	UUID bool
	// MaxChars bounds the characters after trimming surrounding spaces (0: no bound).
	MaxChars int
	// Plain: no control characters.
	Plain bool
	// HasRange: an integer from Lo to Hi inclusive; for CardRange only when the sibling kind
	// is CARD (any other kind needs 0).
	HasRange, CardRange bool
	// Lo and Hi are the inclusive bounds of the range.
	Lo, Hi int64
	// HasItems: a list of MinItems to MaxItems elements.
	HasItems           bool
	MinItems, MaxItems int
	// UniqueField names an element field that must not repeat within the list ("" for none).
	UniqueField string
	// Value formats.
	Email, E164, Country, Enum, FourDigits, Timestamp, PageToken bool
	// RequiredForCardOrBank: required when the sibling kind is CARD or BANK_ACCOUNT.
	RequiredForCardOrBank bool
}

var (
	reRulesLine = regexp.MustCompile(`(?m)^\s*Rules:\s*(.*)$`)
	clauses     = []struct {
		re  *regexp.Regexp
		set func(r *Rules, m []string)
	}{
		{regexp.MustCompile(`^required$`), func(r *Rules, _ []string) { r.Required = true }},
		{regexp.MustCompile(`^optional$`), func(r *Rules, _ []string) { r.Optional = true }},
		{regexp.MustCompile(`^a UUID, not the nil UUID$`), func(r *Rules, _ []string) { r.UUID = true }},
		{regexp.MustCompile(`^at most (\d+) characters$`), func(r *Rules, m []string) { r.MaxChars = atoi(m[1]) }},
		{regexp.MustCompile(`^no control characters$`), func(r *Rules, _ []string) { r.Plain = true }},
		{regexp.MustCompile(`^(\d+) to (\d+) for a CARD, else 0$`), func(r *Rules, m []string) {
			r.HasRange, r.CardRange, r.Lo, r.Hi = true, true, int64(atoi(m[1])), int64(atoi(m[2]))
		}},
		{regexp.MustCompile(`^(-?\d+) to (\d+)$`), func(r *Rules, m []string) {
			r.HasRange, r.Lo, r.Hi = true, atoi64(m[1]), atoi64(m[2])
		}},
		{regexp.MustCompile(`^(\d+) to (\d+) items$`), func(r *Rules, m []string) {
			r.HasItems, r.MinItems, r.MaxItems = true, atoi(m[1]), atoi(m[2])
		}},
		{regexp.MustCompile(`^each (\w+) at most once$`), func(r *Rules, m []string) { r.UniqueField = m[1] }},
		{regexp.MustCompile(`^an email address$`), func(r *Rules, _ []string) { r.Email = true }},
		{regexp.MustCompile(`^an E\.164 phone number$`), func(r *Rules, _ []string) { r.E164 = true }},
		{regexp.MustCompile(`^two upper-case letters$`), func(r *Rules, _ []string) { r.Country = true }},
		{regexp.MustCompile(`^a defined value$`), func(r *Rules, _ []string) { r.Enum = true }},
		{regexp.MustCompile(`^exactly 4 digits$`), func(r *Rules, _ []string) { r.FourDigits = true }},
		{regexp.MustCompile(`^a valid timestamp$`), func(r *Rules, _ []string) { r.Timestamp = true }},
		{regexp.MustCompile(`^a next_page_token of the same query$`), func(r *Rules, _ []string) { r.PageToken = true }},
		{regexp.MustCompile(`^required for a CARD or BANK_ACCOUNT$`), func(r *Rules, _ []string) { r.RequiredForCardOrBank = true }},
	}
)

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err) // the regexps admit digits only
	}
	return n
}

func atoi64(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		panic(err) // the regexps admit digits only
	}
	return n
}

// Parse reads the "Rules:" line of a field comment; ok is false when there is none.
func Parse(comment string) (r Rules, ok bool, err error) {
	m := reRulesLine.FindStringSubmatch(comment)
	if m == nil {
		return Rules{}, false, nil
	}
	for _, clause := range strings.Split(strings.TrimSuffix(strings.TrimSpace(m[1]), "."), ";") {
		clause = strings.TrimSpace(clause)
		matched := false
		for _, c := range clauses {
			if sm := c.re.FindStringSubmatch(clause); sm != nil {
				c.set(&r, sm)
				matched = true
				break
			}
		}
		if !matched {
			return r, true, fmt.Errorf("unknown rule %q (the grammar is in pkg/protorules)", clause)
		}
	}
	return r, true, nil
}
