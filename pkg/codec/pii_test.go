package codec_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
)

// memKeys is a codec.KeyStore in memory.
type memKeys struct {
	mu     sync.Mutex
	keys   map[string]codec.AEAD
	erased map[string]bool
}

func newMemKeys() *memKeys { return &memKeys{keys: map[string]codec.AEAD{}, erased: map[string]bool{}} }

func (m *memKeys) DataKey(_ context.Context, id string, create bool) (codec.AEAD, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.erased[id] {
		return nil, codec.ErrErased
	}
	if k, ok := m.keys[id]; ok {
		return k, nil
	}
	if !create {
		return nil, codec.ErrNoKey
	}
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, err
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, err
	}
	m.keys[id] = a
	return a, nil
}

func (m *memKeys) erase(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.keys, id)
	m.erased[id] = true
}

func sealedEnvelope(t testing.TB, reg *es.Registry, id string, e es.Event) es.Envelope {
	t.Helper()
	env := es.NewEnvelopes(customer.New(id), []es.Event{e}, es.Metadata{}, time.Now(), ids.New)[0]
	if err := reg.EncodeEnvelope(&env); err != nil {
		t.Fatal(err)
	}
	return env
}

// TestPIISealer: every personal field leaves the payload and comes back with the key; without
// the key (another registry) the fields are empty and the ids stay; a sealed blob moved into
// another customer's event does not open; after erasure the fields read ErasedMarker.
func TestPIISealer(t *testing.T) {
	keys := newMemKeys()
	reg := codec.NewRegistry()
	reg.SetSealer(codec.PIISealer{Keys: keys})
	id := ids.New()
	addr := customer.Address{AddressID: ids.New(), Label: "home", Line1: "Secret Street 1", City: "Secretville", PostalCode: "99999", CountryCode: "DE", IsDefault: true}
	pm := customer.PaymentMethod{PaymentMethodID: ids.New(), Kind: customer.KindCard, Brand: "secretbrand", Last4: "4242", ExpMonth: 11, ExpYear: 2031}
	events := []es.Event{
		customer.CustomerRegistered{CustomerID: id, Email: "secret@example.com", FirstName: "Secreta", LastName: "Hidden", Phone: "+4915100000001", Tier: customer.TierBronze},
		customer.CustomerProfileUpdated{FirstName: "Secretb", LastName: "Hiddener"},
		customer.CustomerEmailChanged{OldEmail: "secret@example.com", NewEmail: "secret2@example.com"},
		customer.CustomerPhoneChanged{OldPhone: "+4915100000001", NewPhone: "+4915100000002"},
		customer.CustomerAddressAdded{Address: addr},
		customer.CustomerAddressUpdated{Address: addr},
		customer.CustomerPaymentMethodAdded{PaymentMethod: pm},
	}
	secrets := [][]byte{[]byte("secret"), []byte("Secret"), []byte("Hidden"), []byte("+49151"), []byte("99999")}
	plain := codec.NewRegistry()
	for _, e := range events {
		env := sealedEnvelope(t, reg, id, e)
		for _, s := range secrets {
			if bytes.Contains(env.Payload, s) {
				t.Fatalf("%s payload holds %q", e.EventType(), s)
			}
		}
		if err := reg.DecodeEnvelope(&env); err != nil {
			t.Fatal(err)
		}
		if env.Event != e {
			t.Fatalf("%s round trip: %+v, want %+v", e.EventType(), env.Event, e)
		}
		env.Event = nil
		if err := plain.DecodeEnvelope(&env); err != nil {
			t.Fatalf("decode without keys: %v", err)
		}
		switch ev := env.Event.(type) {
		case customer.CustomerAddressAdded:
			if ev.Address.Line1 != "" || ev.Address.AddressID != addr.AddressID || !ev.Address.IsDefault {
				t.Fatalf("without keys: %+v", ev)
			}
		case customer.CustomerPaymentMethodAdded:
			if ev.PaymentMethod.Brand != "" || ev.PaymentMethod.Last4 != "4242" || ev.PaymentMethod.Kind != customer.KindCard {
				t.Fatalf("without keys: %+v", ev)
			}
		}
	}

	// The sealed blob of one customer's event does not open as another customer's.
	env := sealedEnvelope(t, reg, id, events[0])
	other := ids.New()
	if _, err := keys.DataKey(context.Background(), other, true); err != nil {
		t.Fatal(err)
	}
	env.AggregateID = other
	if err := reg.DecodeEnvelope(&env); err == nil {
		t.Fatal("a blob moved to another customer decrypted")
	}

	// After erasure: markers.
	env = sealedEnvelopeAfter(t, reg, keys, events[0])
	r := env.Event.(customer.CustomerRegistered)
	if r.Email != codec.ErasedMarker || r.FirstName != codec.ErasedMarker || r.Phone != codec.ErasedMarker || r.CustomerID != env.AggregateID || r.Tier != customer.TierBronze {
		t.Fatalf("after erasure: %+v", r)
	}
	if _, err := keys.DataKey(context.Background(), env.AggregateID, true); !errors.Is(err, codec.ErrErased) {
		t.Fatalf("key after erasure: %v", err)
	}
}

// TestPIISealerLostKey: a sealed payload whose key is gone without an erasure (the store has
// no key and no erasure marker) does not open as erased: it fails with ErrKeyLost naming the
// customer, while the other customers' payloads still open. IsSealed tells sealed payloads.
func TestPIISealerLostKey(t *testing.T) {
	keys := newMemKeys()
	reg := codec.NewRegistry()
	reg.SetSealer(codec.PIISealer{Keys: keys})
	lost, kept := ids.New(), ids.New()
	e := customer.CustomerEmailChanged{OldEmail: "lost@example.com", NewEmail: "lost2@example.com"}
	lostEnv, keptEnv := sealedEnvelope(t, reg, lost, e), sealedEnvelope(t, reg, kept, e)
	for _, env := range []es.Envelope{lostEnv, keptEnv} {
		if sealed, err := codec.IsSealed(env.EventType, env.Payload); err != nil || !sealed {
			t.Fatalf("IsSealed = %v, %v", sealed, err)
		}
	}
	clear := sealedEnvelope(t, codec.NewRegistry(), lost, e)
	if sealed, err := codec.IsSealed(clear.EventType, clear.Payload); err != nil || sealed {
		t.Fatalf("IsSealed of a clear payload = %v, %v", sealed, err)
	}
	keys.mu.Lock()
	delete(keys.keys, lost)
	keys.mu.Unlock()

	err := reg.DecodeEnvelope(&lostEnv)
	if !errors.Is(err, codec.ErrKeyLost) || errors.Is(err, codec.ErrErased) || !strings.Contains(err.Error(), lost) {
		t.Fatalf("open with a lost key: %v (event %+v), want ErrKeyLost naming %s", err, lostEnv.Event, lost)
	}
	if err := reg.DecodeEnvelope(&keptEnv); err != nil || keptEnv.Event != e {
		t.Fatalf("another customer: %+v, %v", keptEnv.Event, err)
	}
}

// sealedEnvelopeAfter seals e for a fresh customer, erases that customer's key, and decodes.
func sealedEnvelopeAfter(t *testing.T, reg *es.Registry, keys *memKeys, e es.Event) es.Envelope {
	t.Helper()
	id := ids.New()
	if r, ok := e.(customer.CustomerRegistered); ok {
		r.CustomerID = id
		e = r
	}
	env := sealedEnvelope(t, reg, id, e)
	keys.erase(id)
	if err := reg.DecodeEnvelope(&env); err != nil {
		t.Fatal(err)
	}
	return env
}

// BenchmarkPIISeal measures encoding and decoding one CustomerEmailChanged with its personal
// fields in clear and sealed (the data key cached): the CPU cost of the encryption per event.
func BenchmarkPIISeal(b *testing.B) {
	sealing := codec.NewRegistry()
	sealing.SetSealer(codec.PIISealer{Keys: newMemKeys()})
	id := ids.New()
	e := customer.CustomerEmailChanged{OldEmail: "old@example.com", NewEmail: "new@example.com"}
	for _, mode := range []struct {
		name string
		reg  *es.Registry
	}{{"pii=off", codec.NewRegistry()}, {"pii=on", sealing}} {
		b.Run(mode.name+"/encode", func(b *testing.B) {
			env := es.NewEnvelopes(customer.New(id), []es.Event{e}, es.Metadata{}, time.Now(), ids.New)[0]
			for b.Loop() {
				if err := mode.reg.EncodeEnvelope(&env); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(mode.name+"/decode", func(b *testing.B) {
			env := sealedEnvelope(b, mode.reg, id, e)
			for b.Loop() {
				if err := mode.reg.DecodeEnvelope(&env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestSealedCustomerSnapshots: a live customer's snapshot holds no personal data in clear and
// restores with the key; once the key is gone it does not restore (the command service then
// replays); an erased customer's snapshot (no personal data) restores without key; a snapshot of
// schema version 1 (in clear, before encryption) still restores.
func TestSealedCustomerSnapshots(t *testing.T) {
	keys := newMemKeys()
	codecs := codec.SealedCustomerSnapshots{Keys: keys}
	id := ids.New()
	c := customer.New(id)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := c.Apply(customer.CustomerRegistered{CustomerID: id, Email: "snap@example.com", FirstName: "Snappy", LastName: "Shot", Tier: customer.TierBronze}, at); err != nil {
		t.Fatal(err)
	}
	c.SetVersion(1)
	state, err := codecs.Take(c)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(state, []byte("snap@example.com")) || bytes.Contains(state, []byte("Snappy")) {
		t.Fatal("sealed snapshot holds personal data in clear")
	}
	snap := es.Snapshot{AggregateID: id, AggregateType: customer.AggregateType, Version: 1, SchemaVersion: codecs.SchemaVersion(), State: state}
	got, err := codecs.Restore(snap)
	if err != nil || got.(*customer.Customer).Email != "snap@example.com" {
		t.Fatalf("restore: %+v, %v", got, err)
	}
	plain, err := codec.CustomerSnapshotCodec{}.Take(c)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := codecs.Restore(es.Snapshot{AggregateID: id, Version: 1, SchemaVersion: codec.SnapshotSchemaVersion, State: plain}); err != nil || got.(*customer.Customer).FirstName != "Snappy" {
		t.Fatalf("restore of a clear snapshot: %+v, %v", got, err)
	}

	keys.erase(id)
	if _, err := codecs.Restore(snap); err == nil {
		t.Fatal("restored a sealed snapshot without its key")
	}
	if err := c.Apply(customer.CustomerErased{}, at); err != nil {
		t.Fatal(err)
	}
	c.SetVersion(2)
	state, err = codecs.Take(c)
	if err != nil {
		t.Fatalf("snapshot of an erased customer: %v", err)
	}
	got, err = codecs.Restore(es.Snapshot{AggregateID: id, AggregateType: customer.AggregateType, Version: 2, SchemaVersion: codecs.SchemaVersion(), State: state})
	if err != nil || got.(*customer.Customer).Status != customer.StatusErased {
		t.Fatalf("restore of an erased customer: %+v, %v", got, err)
	}
}
