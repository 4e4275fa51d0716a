package readmodel

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/es"
)

// Page sizes of the list queries.
const (
	// DefaultPageSize is used when a request asks for 0 (or fewer) entries.
	DefaultPageSize = 50
	// MaxPageSize caps the entries of one page.
	MaxPageSize = 500
)

// ClampPageSize returns the page size a list query uses for a requested size.
func ClampPageSize(n int) int {
	switch {
	case n <= 0:
		return DefaultPageSize
	case n > MaxPageSize:
		return MaxPageSize
	default:
		return n
	}
}

// tokenVersion is the format version of page tokens.
const tokenVersion = 1

// pageToken is the decoded form of a page token: where each partition of a list resumes.
type pageToken struct {
	// V is the format version.
	V int `json:"v"`
	// K binds the token to its list: "c:<customer id>" or "s:<STATUS>".
	K string `json:"k"`
	// P holds one cursor per partition (one for a customer's list, one per shard for a status).
	P []cursor `json:"p"`
}

// cursor is the position after the last row consumed in one partition.
type cursor struct {
	// S is the shard (0 for a customer's list).
	S int `json:"s"`
	// T is the created_at of the last row consumed, in Unix milliseconds.
	T int64 `json:"t,omitempty"`
	// O is the order id of the last row consumed; empty when nothing was consumed yet.
	O string `json:"o,omitempty"`
	// X marks a partition with nothing left.
	X bool `json:"x,omitempty"`
}

// key is a clustering position: created_at then order id.
type key struct {
	createdAt time.Time
	orderID   gocql.UUID
}

func (c cursor) key() (key, bool, error) {
	if c.O == "" {
		return key{}, false, nil
	}
	u, err := gocql.ParseUUID(c.O)
	if err != nil {
		return key{}, false, err
	}
	return key{createdAt: time.UnixMilli(c.T).UTC(), orderID: u}, true, nil
}

func cursorAt(shard int, k key) cursor {
	return cursor{S: shard, T: k.createdAt.UnixMilli(), O: k.orderID.String()}
}

// errBadToken is the error of a token that cannot be used for the list asked for.
func errBadToken(reason string) error {
	return es.Invalid("page_token", reason)
}

func encodeToken(t pageToken) string {
	t.V = tokenVersion
	b, _ := json.Marshal(t) // plain structs: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeToken parses a token of the list scope; the empty token is the first page (nil).
func decodeToken(s, scope string) (*pageToken, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errBadToken("is not a token returned by this list")
	}
	var t pageToken
	if err := json.Unmarshal(b, &t); err != nil || t.V != tokenVersion {
		return nil, errBadToken("is not a token returned by this list")
	}
	if t.K != scope {
		return nil, errBadToken(fmt.Sprintf("belongs to another list (%s)", t.K))
	}
	for _, c := range t.P {
		if _, _, err := c.key(); err != nil {
			return nil, errBadToken("is corrupt")
		}
	}
	return &t, nil
}
