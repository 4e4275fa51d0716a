package readmodel

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/domain/order"
)

// Page is one page of a list of orders.
type Page struct {
	// Orders are the page's orders, newest first.
	Orders []Order
	// NextPageToken resumes the list after this page; empty on the last page.
	NextPageToken string
}

// scanned is one row read by a list query, with its clustering key.
type scanned struct {
	key   key
	ghost bool
	order Order
}

// readPartition reads up to limit rows of one list partition after the cursor position (all
// rows when after is nil), newest first.
func (t OrderTables) readPartition(ctx context.Context, stmt string, args []any, after *key, limit int) ([]scanned, error) {
	if after != nil {
		stmt += ` AND (created_at, order_id) < (?, ?)`
		args = append(args, after.createdAt, after.orderID)
	}
	stmt += ` LIMIT ?`
	args = append(args, limit)
	iter := t.s.Query(stmt, args...).WithContext(ctx).PageSize(limit).Iter()
	var out []scanned
	var r orderRow
	for iter.Scan(r.dest()...) {
		s := scanned{key: key{createdAt: r.createdAt.UTC(), orderID: r.orderID}, ghost: r.ghost()}
		if !s.ghost {
			o, err := r.order()
			if err != nil {
				_ = iter.Close()
				return nil, err
			}
			s.order = o
		}
		out = append(out, s)
		r = orderRow{}
	}
	if err := iter.Close(); err != nil {
		return nil, cql.UnavailableIn(ctx, err)
	}
	return out, nil
}

// partition is the state of one partition while a page is assembled.
type partition struct {
	shard int
	rows  []scanned
	next  int // index of the first row not consumed
	limit int
	prev  cursor
}

// head returns the next non-ghost row, skipping ghosts (which count as consumed).
func (p *partition) head() (scanned, bool) {
	for p.next < len(p.rows) && p.rows[p.next].ghost {
		p.next++
	}
	if p.next < len(p.rows) {
		return p.rows[p.next], true
	}
	return scanned{}, false
}

// mayHaveMore reports whether rows beyond those fetched may exist (the fetch was full).
func (p *partition) mayHaveMore() bool { return !p.prev.X && len(p.rows) >= p.limit }

// cursor returns where the partition resumes after the rows consumed so far.
func (p *partition) cursor() cursor {
	if p.prev.X {
		return p.prev
	}
	c := p.prev
	c.S = p.shard
	if p.next > 0 {
		c = cursorAt(p.shard, p.rows[p.next-1].key)
	}
	if p.next == len(p.rows) && len(p.rows) < p.limit {
		c.X = true
	}
	return c
}

// newer reports whether a sorts before b in a newest-first list.
func newer(a, b key) bool {
	if !a.createdAt.Equal(b.createdAt) {
		return a.createdAt.After(b.createdAt)
	}
	return bytes.Compare(a.orderID[:], b.orderID[:]) > 0
}

// merge takes up to size rows from the partitions, newest first (a k-way merge, so each
// partition is consumed in its own order), and returns them with the token of the next page.
func merge(parts []*partition, size int, scope string) Page {
	var page Page
	for len(page.Orders) < size {
		best := -1
		var bestRow scanned
		stalled := false
		for i, p := range parts {
			r, ok := p.head()
			if !ok {
				// A shard whose fetched rows ran out but whose fetch was full may hold rows
				// newer than every other shard's next row: end the page here rather than
				// guess; the next page fetches more of it.
				stalled = stalled || p.mayHaveMore()
				continue
			}
			if best < 0 || newer(r.key, bestRow.key) {
				best, bestRow = i, r
			}
		}
		if stalled || best < 0 {
			break
		}
		page.Orders = append(page.Orders, bestRow.order)
		parts[best].next++
	}
	tok := pageToken{K: scope}
	done := true
	for _, p := range parts {
		p.head() // count trailing ghosts as consumed
		c := p.cursor()
		done = done && c.X
		tok.P = append(tok.P, c)
	}
	if !done {
		page.NextPageToken = encodeToken(tok)
	}
	return page
}

// ListByCustomer returns a page of the customer's orders, newest first.
func (t OrderTables) ListByCustomer(ctx context.Context, customerID string, pageSize int, token string) (Page, error) {
	id, err := uuidOf("customer_id", customerID)
	if err != nil {
		return Page{}, err
	}
	size := ClampPageSize(pageSize)
	scope := "c:" + id.String()
	tok, err := decodeToken(token, scope)
	if err != nil {
		return Page{}, err
	}
	p := &partition{shard: 0, limit: size + 1}
	if tok != nil {
		if len(tok.P) != 1 {
			return Page{}, errBadToken("is corrupt")
		}
		p.prev = tok.P[0]
	}
	if !p.prev.X {
		after, ok, _ := p.prev.key()
		var ap *key
		if ok {
			ap = &after
		}
		p.rows, err = t.readPartition(ctx, `SELECT `+orderSelect+` FROM `+t.byCustomer+` WHERE customer_id = ?`, []any{id}, ap, p.limit)
		if err != nil {
			return Page{}, fmt.Errorf("list orders of customer %s: %w", customerID, err)
		}
	}
	return merge([]*partition{p}, size, scope), nil
}

// ListByStatus returns a page of the orders with the status, newest first, merged from every
// shard of the status (read in parallel).
func (t OrderTables) ListByStatus(ctx context.Context, status order.Status, pageSize int, token string) (Page, error) {
	if status <= order.StatusUnspecified || status > order.StatusCancelled {
		return Page{}, errStatus(status)
	}
	size := ClampPageSize(pageSize)
	scope := "s:" + status.String()
	tok, err := decodeToken(token, scope)
	if err != nil {
		return Page{}, err
	}
	parts := make([]*partition, StatusShards)
	for i := range parts {
		parts[i] = &partition{shard: i, limit: size + 1}
	}
	if tok != nil {
		if len(tok.P) != StatusShards {
			return Page{}, errBadToken("is corrupt")
		}
		for _, c := range tok.P {
			if c.S < 0 || c.S >= StatusShards {
				return Page{}, errBadToken("is corrupt")
			}
			parts[c.S].prev = c
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, StatusShards)
	for _, p := range parts {
		if p.prev.X {
			continue
		}
		wg.Add(1)
		go func(p *partition) {
			defer wg.Done()
			after, ok, _ := p.prev.key()
			var ap *key
			if ok {
				ap = &after
			}
			p.rows, errs[p.shard] = t.readPartition(ctx, `SELECT `+orderSelect+` FROM `+t.byStatus+` WHERE status = ? AND shard = ?`,
				[]any{status.String(), p.shard}, ap, p.limit)
		}(p)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return Page{}, fmt.Errorf("list %s orders, shard %d: %w", status, i, err)
		}
	}
	return merge(parts, size, scope), nil
}

// CustomerOrders calls fn for every order of the customer, newest first, reading pageSize rows
// at a time (the orders projection's fan-out of customer details).
func (t OrderTables) CustomerOrders(ctx context.Context, customerID string, pageSize int, fn func(Order) error) error {
	token := ""
	for {
		page, err := t.ListByCustomer(ctx, customerID, pageSize, token)
		if err != nil {
			return err
		}
		for _, o := range page.Orders {
			if err := fn(o); err != nil {
				return err
			}
		}
		if page.NextPageToken == "" {
			return nil
		}
		token = page.NextPageToken
	}
}
