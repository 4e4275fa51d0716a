// Package pii keeps the customers' data keys for crypto-shredding (docs/privacy.md): one Tink
// AEAD keyset (AES256-GCM) per customer in the customer_keys table, wrapped by a key-encryption
// key (KEK) loaded from a Tink keyset file, and deleted when the customer is erased (the row
// stays, with erased_at: a customer without a row was never erased, so a sealed customer
// without one has lost its key, codec.ErrKeyLost). Store implements codec.KeyStore, through
// which the codec seals and opens the personal fields of Customer events and snapshots.
package pii

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/gocql/gocql"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/config"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
)

// KEK is the key-encryption key: a Tink AEAD keyset of one or more keys. Its primary key wraps
// new data keys; every key of it unwraps (so a rotated-out key keeps reading until every data
// key was re-wrapped, see Store.Rewrap).
type KEK struct {
	aead    tink.AEAD
	primary uint32
	keys    int
}

// Keys is the number of keys of the keyset: more than one while a rotation is under way.
func (k *KEK) Keys() int { return k.keys }

// PrimaryKeyID is the id of the key that wraps new data keys.
func (k *KEK) PrimaryKeyID() uint32 { return k.primary }

// ParseKEK reads a KEK from a cleartext Tink keyset in JSON (what GenerateKEK and RotateKEK
// write). The file is a secret: keep it out of the repository, mode 0600, or in a secret store.
func ParseKEK(jsonKeyset []byte) (*KEK, error) {
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(jsonKeyset)))
	if err != nil {
		return nil, fmt.Errorf("KEK: read Tink keyset: %w", err)
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("KEK: not an AEAD keyset: %w", err)
	}
	p, err := h.Primary()
	if err != nil {
		return nil, fmt.Errorf("KEK: %w", err)
	}
	return &KEK{aead: a, primary: p.KeyID(), keys: h.Len()}, nil
}

// LoadKEK reads a KEK file (see ParseKEK).
func LoadKEK(path string) (*KEK, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("KEK: %w", err)
	}
	return ParseKEK(b)
}

// GenerateKEK returns a new KEK keyset (one AES256-GCM key) in JSON.
func GenerateKEK() ([]byte, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, err
	}
	return writeJSON(h)
}

// RotateKEK adds a new AES256-GCM key to a KEK keyset and makes it the primary: new data keys
// are wrapped with it, the old keys still unwrap. Run Store.Rewrap with the new keyset, then
// DropOldKEKKeys to remove the old keys.
func RotateKEK(jsonKeyset []byte) ([]byte, error) {
	return editKEK(jsonKeyset, func(_ *keyset.Handle, m *keyset.Manager) error {
		id, err := m.Add(aead.AES256GCMKeyTemplate())
		if err != nil {
			return err
		}
		return m.SetPrimary(id)
	})
}

// editKEK applies edit to the keyset in JSON and returns the result in JSON.
func editKEK(jsonKeyset []byte, edit func(*keyset.Handle, *keyset.Manager) error) ([]byte, error) {
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(jsonKeyset)))
	if err != nil {
		return nil, fmt.Errorf("KEK: %w", err)
	}
	m := keyset.NewManagerFromHandle(h)
	if err := edit(h, m); err != nil {
		return nil, fmt.Errorf("KEK: %w", err)
	}
	nh, err := m.Handle()
	if err != nil {
		return nil, err
	}
	return writeJSON(nh)
}

// DropOldKEKKeys removes every key but the primary from a KEK keyset (after Store.Rewrap).
func DropOldKEKKeys(jsonKeyset []byte) ([]byte, error) {
	return editKEK(jsonKeyset, func(h *keyset.Handle, m *keyset.Manager) error {
		p, err := h.Primary()
		if err != nil {
			return err
		}
		for i := range h.Len() {
			e, err := h.Entry(i)
			if err != nil {
				return err
			}
			if e.KeyID() != p.KeyID() {
				if err := m.Delete(e.KeyID()); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func writeJSON(h *keyset.Handle) ([]byte, error) {
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DefaultCacheTTL is how long a Store trusts a data key (or its absence) it read.
const DefaultCacheTTL = 30 * time.Second

// maxCached bounds the cache; past it the cache starts afresh.
const maxCached = 100000

// Options configure a Store.
type Options struct {
	// CacheTTL is how long a key read from the table is used without reading it again; an
	// erasure by another process is seen at most this late (Erase is seen at once by its own
	// process). Default DefaultCacheTTL; negative disables the cache.
	CacheTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

type cached struct {
	key    codec.AEAD // nil: none or erased
	erased bool
	at     time.Time
}

// Store is the customer_keys table: codec.KeyStore plus erasure and KEK rotation.
type Store struct {
	s     *gocql.Session
	kek   *KEK
	opts  Options
	mu    sync.Mutex
	cache map[string]cached
}

var _ codec.KeyStore = (*Store)(nil)

// errNoKEK is the error of a store without KEK asked to make or open a key.
var errNoKEK = errors.New("no KEK configured (ORDERSYS_PII_KEK_FILE)")

// NewStore returns the store of the customer_keys table of session's keyspace. kek may be nil:
// the store then only erases customers and tells erased ones; making or opening a key fails.
func NewStore(s *gocql.Session, kek *KEK, opts Options) *Store {
	if opts.CacheTTL == 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{s: s, kek: kek, opts: opts, cache: map[string]cached{}}
}

func (st *Store) remember(id string, c cached) {
	if st.opts.CacheTTL < 0 {
		return
	}
	c.at = st.opts.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.cache) >= maxCached {
		st.cache = map[string]cached{}
	}
	st.cache[id] = c
}

func (st *Store) recall(id string) (cached, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	c, ok := st.cache[id]
	if !ok || st.opts.Now().Sub(c.at) >= st.opts.CacheTTL {
		return cached{}, false
	}
	return c, true
}

// Forget drops what the store cached about a customer.
func (st *Store) Forget(customerID string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.cache, ids.Canonical(customerID))
}

func parseID(customerID string) (string, gocql.UUID, error) {
	id := ids.Canonical(customerID)
	u, err := gocql.ParseUUID(id)
	if err != nil || !ids.Valid(id) {
		return "", gocql.UUID{}, fmt.Errorf("customer key of %q: %w", customerID, es.ErrInvalidArgument)
	}
	return id, u, nil
}

// unwrap decrypts a stored keyset (the customer id bound as associated data).
func (st *Store) unwrap(id string, wrapped []byte) (*keyset.Handle, error) {
	if st.kek == nil {
		return nil, errNoKEK
	}
	h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(wrapped)), st.kek.aead, []byte(id))
	if err != nil {
		return nil, fmt.Errorf("unwrap the data key of customer %s (is the KEK that wrapped it in ORDERSYS_PII_KEK_FILE?): %w", id, err)
	}
	return h, nil
}

func (st *Store) wrap(id string, h *keyset.Handle) ([]byte, error) {
	if st.kek == nil {
		return nil, errNoKEK
	}
	var buf bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), st.kek.aead, []byte(id)); err != nil {
		return nil, fmt.Errorf("wrap the data key of customer %s: %w", id, err)
	}
	return buf.Bytes(), nil
}

func primitive(h *keyset.Handle) (codec.AEAD, error) {
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	return a, nil
}

// DataKey returns the customer's data key (see codec.KeyStore).
func (st *Store) DataKey(ctx context.Context, customerID string, create bool) (codec.AEAD, error) {
	id, u, err := parseID(customerID)
	if err != nil {
		return nil, err
	}
	if c, ok := st.recall(id); ok {
		switch {
		case c.erased:
			return nil, codec.ErrErased
		case c.key != nil:
			return c.key, nil
		case !create:
			return nil, codec.ErrNoKey
		}
	}
	var wrapped []byte
	var erasedAt time.Time
	err = st.s.Query(`SELECT keyset, erased_at FROM customer_keys WHERE customer_id = ?`, u).
		WithContext(ctx).Scan(&wrapped, &erasedAt)
	switch {
	case err == nil:
		return st.fromRow(id, wrapped, erasedAt)
	case errors.Is(err, gocql.ErrNotFound):
	default:
		return nil, fmt.Errorf("read the data key of customer %s: %w: %w", id, es.ErrUnavailable, err)
	}
	if !create {
		st.remember(id, cached{})
		return nil, codec.ErrNoKey
	}
	// No row: an erasure would have left one (erased_at), so either the customer never had a
	// key, or its key was lost. Its events tell: a sealed one means a key existed, and a new
	// key would leave those events unreadable for good while new ones were sealed with it.
	sealed, err := st.hasSealedEvents(ctx, u)
	switch {
	case err != nil:
		return nil, fmt.Errorf("create the data key of customer %s: %w", id, err)
	case sealed:
		return nil, fmt.Errorf("create the data key of customer %s: %w", id, codec.ErrKeyLost)
	}
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, err
	}
	w, err := st.wrap(id, h)
	if err != nil {
		return nil, err
	}
	prev := map[string]any{}
	applied, err := st.s.Query(`INSERT INTO customer_keys (customer_id, keyset, kek_key_id, created_at) VALUES (?, ?, ?, ?) IF NOT EXISTS`,
		u, w, int64(st.kek.primary), st.opts.Now().UTC()).WithContext(ctx).MapScanCAS(prev)
	if err != nil {
		return nil, fmt.Errorf("create the data key of customer %s: %w: %w", id, es.ErrUnavailable, err)
	}
	if !applied { // another writer made it first (or erased the customer): use what is there
		pw, _ := prev["keyset"].([]byte)
		pe, _ := prev["erased_at"].(time.Time)
		return st.fromRow(id, pw, pe)
	}
	a, err := primitive(h)
	if err != nil {
		return nil, err
	}
	st.remember(id, cached{key: a})
	return a, nil
}

// hasSealedEvents reports whether any stored event of the customer holds sealed personal data.
// It reads the customer's partition of event_store, once per customer that gets a key: empty
// for a new customer, events written in clear for one registered before encryption.
func (st *Store) hasSealedEvents(ctx context.Context, u gocql.UUID) (bool, error) {
	iter := st.s.Query(`SELECT event_type, payload FROM event_store WHERE aggregate_id = ?`, u).
		WithContext(ctx).PageSize(100).Iter()
	var (
		eventType string
		payload   []byte
	)
	for iter.Scan(&eventType, &payload) {
		sealed, err := codec.IsSealed(eventType, payload)
		if err != nil || sealed {
			_ = iter.Close()
			return sealed, err
		}
	}
	if err := iter.Close(); err != nil {
		return false, fmt.Errorf("read the events: %w: %w", es.ErrUnavailable, err)
	}
	return false, nil
}

// fromRow turns a stored row into the key, or ErrErased.
func (st *Store) fromRow(id string, wrapped []byte, erasedAt time.Time) (codec.AEAD, error) {
	if !erasedAt.IsZero() || len(wrapped) == 0 {
		st.remember(id, cached{erased: true})
		return nil, codec.ErrErased
	}
	h, err := st.unwrap(id, wrapped)
	if err != nil {
		return nil, err
	}
	a, err := primitive(h)
	if err != nil {
		return nil, err
	}
	st.remember(id, cached{key: a})
	return a, nil
}

// Erase deletes the customer's data key for good and marks the customer erased, so that no key
// is ever made for it again, and deletes the customer's snapshots (those written before
// encryption hold its personal data in clear; sealed ones no longer open). Erasing an erased
// customer, or one without a key, is not an error.
func (st *Store) Erase(ctx context.Context, customerID string) error {
	id, u, err := parseID(customerID)
	if err != nil {
		return err
	}
	now := st.opts.Now().UTC()
	st.remember(id, cached{erased: true})
	if err := st.s.Query(`DELETE FROM snapshots WHERE aggregate_id = ?`, u).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("erase the snapshots of customer %s: %w: %w", id, es.ErrUnavailable, err)
	}
	applied, err := st.s.Query(`INSERT INTO customer_keys (customer_id, erased_at) VALUES (?, ?) IF NOT EXISTS`, u, now).
		WithContext(ctx).MapScanCAS(map[string]any{})
	if err != nil {
		return fmt.Errorf("erase the data key of customer %s: %w: %w", id, es.ErrUnavailable, err)
	}
	if applied {
		return nil
	}
	if _, err := st.s.Query(`UPDATE customer_keys SET keyset = null, kek_key_id = null, erased_at = ? WHERE customer_id = ? IF EXISTS`, now, u).
		WithContext(ctx).MapScanCAS(map[string]any{}); err != nil {
		return fmt.Errorf("erase the data key of customer %s: %w: %w", id, es.ErrUnavailable, err)
	}
	return nil
}

// Erased reports whether the customer's key was erased.
func (st *Store) Erased(ctx context.Context, customerID string) (bool, error) {
	_, err := st.DataKey(ctx, customerID, false)
	switch {
	case errors.Is(err, codec.ErrErased):
		return true, nil
	case err == nil, errors.Is(err, codec.ErrNoKey):
		return false, nil
	}
	return false, err
}

// Rewrap re-wraps with the KEK's primary key every data key wrapped by another KEK key (after
// RotateKEK), and returns how many it re-wrapped. The old KEK keys must still be in the keyset.
// It is safe to run while the services run (each row changes only if it is still as read) and
// to run again.
func (st *Store) Rewrap(ctx context.Context) (int, error) {
	if st.kek == nil {
		return 0, errNoKEK
	}
	iter := st.s.Query(`SELECT customer_id, keyset, kek_key_id FROM customer_keys`).WithContext(ctx).PageSize(500).Iter()
	var (
		u       gocql.UUID
		wrapped []byte
		kekID   *int64
		n       int
	)
	for iter.Scan(&u, &wrapped, &kekID) {
		if len(wrapped) == 0 || kekID == nil || uint32(*kekID) == st.kek.primary {
			continue
		}
		id := u.String()
		h, err := st.unwrap(id, wrapped)
		if err != nil {
			_ = iter.Close()
			return n, err
		}
		w, err := st.wrap(id, h)
		if err != nil {
			_ = iter.Close()
			return n, err
		}
		applied, err := st.s.Query(`UPDATE customer_keys SET keyset = ?, kek_key_id = ? WHERE customer_id = ? IF kek_key_id = ?`,
			w, int64(st.kek.primary), u, *kekID).WithContext(ctx).MapScanCAS(map[string]any{})
		if err != nil {
			_ = iter.Close()
			return n, fmt.Errorf("re-wrap the data key of customer %s: %w", id, err)
		}
		if applied {
			n++
		}
	}
	if err := iter.Close(); err != nil {
		return n, fmt.Errorf("re-wrap: read customer_keys: %w", err)
	}
	return n, nil
}

// KEK returns the store's key-encryption key (nil without one).
func (st *Store) KEK() *KEK { return st.kek }

// Enabled reports whether the store has a KEK, i.e. personal data is encrypted.
func (st *Store) Enabled() bool { return st.kek != nil }

// Setup returns the key store that cfg configures on session and, when cfg names a KEK file,
// makes reg seal and open the personal fields of Customer events through it. Without a KEK
// file the store can still erase customers (personal data is then stored in clear).
func Setup(s *gocql.Session, cfg config.PII, reg *es.Registry) (*Store, error) {
	var kek *KEK
	if cfg.KEKFile != "" {
		k, err := LoadKEK(cfg.KEKFile)
		if err != nil {
			return nil, err
		}
		kek = k
	}
	st := NewStore(s, kek, Options{CacheTTL: cfg.KeyCacheTTL})
	if kek != nil && reg != nil {
		reg.SetSealer(codec.PIISealer{Keys: st})
	}
	return st, nil
}
