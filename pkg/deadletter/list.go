package deadletter

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/es"
)

// Query selects a page of dead letters.
type Query struct {
	// Topic is the request's topic (empty: every topic of the service, see Admin.Topics).
	Topic string
	// AggregateID, when set, keeps the dead letters of that aggregate.
	AggregateID string
	// ReasonContains, when set, keeps the dead letters whose reason contains it (any case).
	ReasonContains string
	// CreatedAfter and CreatedBefore bound when they were recorded (zero: unbounded).
	CreatedAfter, CreatedBefore time.Time
	// PageSize is the most dead letters returned; PageToken where the page starts (empty: at
	// the beginning).
	PageSize  int
	PageToken string
}

// maxScanned bounds the rows one page reads while filtering, so that a filter matching little
// of a large table cannot make one call read all of it: the page then ends early with a token.
const maxScanned = 10000

// List returns a page of the dead letters Query selects, oldest first per topic (the topics in
// the order Topics names them), and the token of the next page ("" after the last). A malformed
// token is an es.ErrInvalidArgument on page_token.
func (a *Admin) List(ctx context.Context, q Query) ([]*cql.DeadLetter, string, error) {
	topics, err := a.Topics(q.Topic)
	if err != nil {
		return nil, "", err
	}
	ti, after, err := parseToken(q.PageToken, len(topics))
	if err != nil {
		return nil, "", err
	}
	reason := strings.ToLower(q.ReasonContains)
	var out []*cql.DeadLetter
	scanned := 0
	for ; ti < len(topics); ti, after = ti+1, (gocql.UUID{}) {
		for {
			batch := min(max(q.PageSize-len(out), 1)*4, 1000)
			dls, err := a.Store.List(ctx, topics[ti], after, q.CreatedAfter, q.CreatedBefore, batch)
			if err != nil {
				return nil, "", err
			}
			for _, dl := range dls {
				scanned++
				after = dl.ID
				if (q.AggregateID == "" || dl.AggregateID == q.AggregateID) &&
					(reason == "" || strings.Contains(strings.ToLower(dl.Reason), reason)) {
					out = append(out, dl)
				}
				if len(out) == q.PageSize || scanned >= maxScanned {
					return out, token(ti, after), nil
				}
			}
			if len(dls) < batch {
				break // this topic is done
			}
		}
	}
	return out, "", nil
}

// A page token is base64("<topic index>:<last id read>").
func token(topic int, after gocql.UUID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(topic) + ":" + after.String()))
}

func parseToken(tok string, topics int) (int, gocql.UUID, error) {
	if tok == "" {
		return 0, gocql.UUID{}, nil
	}
	bad := es.Invalid("page_token", "must be a next_page_token of the same query")
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, gocql.UUID{}, bad
	}
	i, id, ok := strings.Cut(string(raw), ":")
	ti, err1 := strconv.Atoi(i)
	after, err2 := gocql.ParseUUID(id)
	if !ok || err1 != nil || err2 != nil || ti < 0 || ti >= topics {
		return 0, gocql.UUID{}, bad
	}
	return ti, after, nil
}
