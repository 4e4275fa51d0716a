// Package reseal is the one-time migration of customers written before the encryption of
// personal data (docs/privacy.md): `migrate reseal-pii`. It is apart from pkg/pii so that what
// needs only the keys (ordersysctl) does not pull in the event store.
package reseal

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/pii"
)

// Result counts what Run did.
type Result struct {
	// Customers is the number of Customer aggregates read.
	Customers int
	// Sealed is the number of events whose personal fields were encrypted in place.
	Sealed int
	// Stripped is the number of events of erased customers whose personal fields were removed.
	Stripped int
}

// String renders the counts.
func (r Result) String() string {
	return fmt.Sprintf("%d customers, %d events sealed, %d events of erased customers stripped", r.Customers, r.Sealed, r.Stripped)
}

// Run is the one-time migration of the customers written before encryption was turned on
// (docs/privacy.md): every Customer event of the event store whose personal fields are in
// clear gets them sealed with the customer's data key, in place; an erased customer's get them
// removed; the customers' snapshots are deleted (those from before encryption are in clear; the
// command service takes sealed ones again). It rewrites stored payloads, which nothing else ever
// does: each row changes only if it still holds the event read (a conditional update on the
// event id), and the decoded event stays the same. It walks the store's token ring in pages,
// so a rerun after a failure redoes only what is left (events already sealed are skipped). The
// outbox rows of those events (kept 7 days) and the records already on the topics keep the
// clear payloads: see docs/privacy.md for republishing the topics.
func Run(ctx context.Context, s *gocql.Session, store *cql.EventStore, keys *pii.Store, progress func(Result)) (Result, error) {
	var res Result
	if !keys.Enabled() {
		return res, errors.New("reseal: no KEK configured (ORDERSYS_PII_KEK_FILE)")
	}
	sealer := codec.PIISealer{Keys: keys}
	after := cql.MinToken
	for {
		page, last, err := store.Aggregates(ctx, after, 200)
		if err != nil {
			return res, err
		}
		if len(page) == 0 {
			return res, nil
		}
		after = last
		for _, id := range page {
			envs, err := store.LoadRaw(ctx, id, 1, math.MaxInt64)
			if err != nil {
				return res, err
			}
			if len(envs) == 0 || envs[0].AggregateType != customer.AggregateType {
				continue
			}
			res.Customers++
			for _, env := range envs {
				inClear, err := codec.PersonalDataInClear(env.EventType, env.Payload)
				if err != nil {
					return res, fmt.Errorf("reseal %s: %w", env, err)
				}
				if !inClear {
					continue
				}
				sealed := env
				err = sealer.Seal(ctx, &sealed)
				stripped := errors.Is(err, codec.ErrErased)
				if stripped {
					sealed.Payload, err = codec.StripPersonalData(env.EventType, env.Payload)
				}
				if err != nil {
					return res, fmt.Errorf("reseal %s: %w", env, err)
				}
				if err := rewrite(ctx, s, env, sealed.Payload); err != nil {
					return res, err
				}
				if stripped {
					res.Stripped++
				} else {
					res.Sealed++
				}
			}
			if err := s.Query(`DELETE FROM snapshots WHERE aggregate_id = ?`, id).WithContext(ctx).Exec(); err != nil {
				return res, fmt.Errorf("reseal: delete the snapshots of %s: %w", id, err)
			}
		}
		if progress != nil {
			progress(res)
		}
	}
}

// rewrite replaces the payload of one stored event if the row still holds that event.
func rewrite(ctx context.Context, s *gocql.Session, env es.Envelope, payload []byte) error {
	if _, err := s.Query(`UPDATE event_store SET payload = ? WHERE aggregate_id = ? AND sequence = ? IF event_id = ?`,
		payload, env.AggregateID, env.Sequence, env.EventID).WithContext(ctx).MapScanCAS(map[string]any{}); err != nil {
		return fmt.Errorf("reseal %s: %w", env, err)
	}
	return nil
}
