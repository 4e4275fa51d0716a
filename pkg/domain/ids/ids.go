// Package ids is the one definition of the identifiers every service shares: what a valid
// aggregate, event, command, product, address or payment-method id is, and its canonical form.
// The command service's edge, the domain, the event store, the codec, the relay, the projector
// and the query service all call Valid (or Canonical), so no service accepts an id that another
// refuses. It uses only the standard library.
package ids

import (
	"crypto/rand"
	"fmt"
	"strings"
)

// Nil is the nil UUID. It is never a valid identifier: a client sending it almost always sent
// an unset value, and Cassandra and ScyllaDB tools treat it as "no id".
const Nil = "00000000-0000-0000-0000-000000000000"

// Probe is a valid identifier that health checks read to see that a store answers. It is
// shaped like a version-4 UUID with every random bit zero, which a random generator never
// produces; should a client ever use it, a probe's read of it is still harmless.
const Probe = "00000000-0000-4000-8000-000000000000"

// Reason is the violation every service reports for an identifier that is not Valid.
const Reason = "must be a UUID (8-4-4-4-12 hexadecimal digits) other than the nil UUID"

// Valid reports whether s is an identifier: a UUID in canonical textual form (36 characters,
// hexadecimal digits grouped 8-4-4-4-12 and separated by hyphens, upper or lower case, as RFC
// 9562 reads them) that is not the nil UUID. Version and variant bits are not checked: clients
// may use any UUID version.
func Valid(s string) bool {
	if len(s) != 36 {
		return false
	}
	zero := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
			zero = zero && c == '0'
		}
	}
	return !zero
}

// Canonical returns s in the form every service stores and compares: surrounding spaces
// removed and hexadecimal digits in lower case (the form Cassandra's uuid type prints). It does
// not check s; call Valid on the result.
func Canonical(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// New returns a fresh random (version 4) UUID in lower-case canonical form. It panics only if
// the operating system's random source fails, which crypto/rand treats as fatal anyway.
func New() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("ids: read random bytes: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
