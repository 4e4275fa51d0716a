// Package ids checks and makes the UUID strings that identify aggregates, items, addresses and
// payment methods. It uses only the standard library.
package ids

import (
	"crypto/rand"
	"fmt"
)

// IsUUID reports whether s is a UUID in canonical textual form: 36 characters, hexadecimal
// digits grouped 8-4-4-4-12 and separated by hyphens. Upper- and lower-case hex digits are both
// accepted (RFC 9562 reads UUIDs case-insensitively); version and variant bits are not checked,
// so the nil UUID passes.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
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
		}
	}
	return true
}

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
