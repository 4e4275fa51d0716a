package codec

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// ErasedMarker stands in, after decoding, for every personal text field of an event whose
// customer was erased (its data key is gone): history shows the field as erased rather than
// failing. Numbers (a card's expiry) come back as 0.
const ErasedMarker = "[erased]"

// SealFormatTinkAEAD is orders.v1.SealedPersonalData.format of a Tink AEAD ciphertext.
const SealFormatTinkAEAD = 1

// sealFormatClear is the format of a sealed snapshot of an erased customer: its state holds no
// personal data and is kept in clear.
const sealFormatClear = 0

// ErrErased is the error of sealing personal data of an erased customer: its data key is gone
// and no new one is ever made. It is a business-rule error (FAILED_PRECONDITION at the edge).
var ErrErased = fmt.Errorf("the customer's personal data was erased: %w", es.ErrRuleViolation)

// ErrNoKey is the KeyStore's answer for a customer that has no data key (and none was asked for).
var ErrNoKey = errors.New("the customer has no data key")

// ErrKeyLost is the error of a customer whose personal data is sealed with a data key that the
// KeyStore no longer has, although the customer was never erased (an erasure leaves a marker:
// ErrErased). The key was lost (a row deleted by hand, a partial restore), not erased: nothing
// opens the customer's sealed fields and no new key is made for it until the key is restored
// from a backup (docs/privacy.md). It is no business rule: INTERNAL at the edge, and a consumer
// dead-letters the event.
var ErrKeyLost = errors.New("the customer's personal data is sealed with a data key that is missing from customer_keys, " +
	"and the customer was not erased: restore the customer's customer_keys row from a backup (docs/privacy.md)")

// AEAD is authenticated encryption with associated data; a Tink tink.AEAD is one.
type AEAD interface {
	Encrypt(plaintext, associatedData []byte) ([]byte, error)
	Decrypt(ciphertext, associatedData []byte) ([]byte, error)
}

// KeyStore gives each customer's data key (pkg/pii implements it on the customer_keys table).
// An erasure leaves a marker in the store, so that a key that is missing without one is known
// to be lost, not erased.
type KeyStore interface {
	// DataKey returns the customer's data key. With create, it makes the customer's key when
	// there is none, unless the customer's stored events are sealed already (then the key was
	// lost: ErrKeyLost). Errors: ErrErased when the customer was erased; ErrNoKey when there is
	// no key and create is false.
	DataKey(ctx context.Context, customerID string, create bool) (AEAD, error)
}

// personalFields names, per event type, the fields that identify a person: dotted paths
// through singular message fields of the event's message. Ids, flags, the kind of a payment
// method and its masked last four digits stay in clear.
var personalFields = map[string][]string{
	customer.EventCustomerRegistered:     {"email", "first_name", "last_name", "phone"},
	customer.EventCustomerProfileUpdated: {"first_name", "last_name"},
	customer.EventCustomerEmailChanged:   {"old_email", "new_email"},
	customer.EventCustomerPhoneChanged:   {"old_phone", "new_phone"},
	customer.EventCustomerAddressAdded:   addressFields("address"),
	customer.EventCustomerAddressUpdated: addressFields("address"),
	customer.EventCustomerPaymentMethodAdded: {
		"payment_method.brand", "payment_method.exp_month", "payment_method.exp_year",
	},
}

func addressFields(prefix string) []string {
	var out []string
	for _, f := range []string{"label", "line1", "line2", "city", "region", "postal_code", "country_code"} {
		out = append(out, prefix+"."+f)
	}
	return out
}

// PersonalFields returns the dotted paths of the personal fields of an event type (nil when it
// has none).
func PersonalFields(eventType string) []string { return personalFields[eventType] }

// sealedField is the field number of SealedPersonalData in every event message that has one.
const sealedField = 15

// piiAssociatedData binds a sealed blob to its customer and event type.
func piiAssociatedData(customerID, what string) []byte {
	return []byte("ordersys.pii.v1|" + customerID + "|" + what)
}

// PIISealer is the es.PayloadSealer of Customer events: Seal moves the personal fields of a
// payload into orders.v1.SealedPersonalData encrypted with the customer's data key (the customer
// id and event type bound as associated data); Open puts them back, or, when the customer was
// erased, replaces each personal text field with ErasedMarker (also in payloads written in clear
// before encryption existed). A sealed payload whose key is missing, the customer not erased,
// fails to open with ErrKeyLost.
type PIISealer struct {
	// Keys gives the data keys.
	Keys KeyStore
}

var _ es.PayloadSealer = PIISealer{}

// Seal encrypts the personal fields of env.Payload in place.
func (s PIISealer) Seal(ctx context.Context, env *es.Envelope) error {
	paths := personalFields[env.EventType]
	if len(paths) == 0 {
		return nil
	}
	m, err := newEventMessage(env.EventType, env.Payload)
	if err != nil {
		return err
	}
	plain := m.ProtoReflect()
	secret := plain.New()
	moved := false
	for _, p := range paths {
		if moveField(plain, secret, strings.Split(p, ".")) {
			moved = true
		}
	}
	if !moved {
		return nil // nothing personal in this event (e.g. a phone removed that was never set)
	}
	pt, err := marshalOpts.Marshal(secret.Interface())
	if err != nil {
		return err
	}
	key, err := s.Keys.DataKey(ctx, env.AggregateID, true)
	if err != nil {
		return err
	}
	ct, err := key.Encrypt(pt, piiAssociatedData(env.AggregateID, env.EventType))
	if err != nil {
		return fmt.Errorf("encrypt personal data: %w", err)
	}
	sealed := &ordersv1.SealedPersonalData{Format: SealFormatTinkAEAD, Ciphertext: ct}
	plain.Set(plain.Descriptor().Fields().ByNumber(sealedField), protoreflect.ValueOfMessage(sealed.ProtoReflect()))
	b, err := marshalOpts.Marshal(m)
	if err != nil {
		return err
	}
	env.Payload = b
	return nil
}

// Open returns env.Payload with its personal fields in clear, or marked erased.
func (s PIISealer) Open(ctx context.Context, env *es.Envelope) ([]byte, error) {
	if f, ok := s.Keys.(interface{ Forget(string) }); ok && env.EventType == customer.EventCustomerErased {
		f.Forget(env.AggregateID) // a reader of the erasure drops the key it may have cached
	}
	paths := personalFields[env.EventType]
	if len(paths) == 0 {
		return env.Payload, nil
	}
	m, err := newEventMessage(env.EventType, env.Payload)
	if err != nil {
		return nil, err
	}
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByNumber(sealedField)
	key, kerr := s.Keys.DataKey(ctx, env.AggregateID, false)
	if f, ok := s.Keys.(interface{ Forget(string) }); ok && errors.Is(kerr, ErrNoKey) && r.Has(fd) {
		// Sealed, yet no key known: the store may have cached the absence from before the key
		// was made (a customer written in clear earlier); ask the table itself.
		f.Forget(env.AggregateID)
		key, kerr = s.Keys.DataKey(ctx, env.AggregateID, false)
	}
	erased := errors.Is(kerr, ErrErased)
	if kerr != nil && !erased && !errors.Is(kerr, ErrNoKey) {
		return nil, kerr
	}
	if !r.Has(fd) {
		if !erased {
			return env.Payload, nil // written in clear, before encryption
		}
	} else {
		sealed, _ := r.Get(fd).Message().Interface().(*ordersv1.SealedPersonalData)
		r.Clear(fd)
		if kerr == nil {
			if sealed.GetFormat() != SealFormatTinkAEAD {
				return nil, fmt.Errorf("sealed personal data of format %d unknown", sealed.GetFormat())
			}
			pt, err := key.Decrypt(sealed.GetCiphertext(), piiAssociatedData(env.AggregateID, env.EventType))
			if err != nil {
				return nil, fmt.Errorf("decrypt the personal data of %s with the customer's data key: %w", env, err)
			}
			secret := r.New()
			if err := proto.Unmarshal(pt, secret.Interface()); err != nil {
				return nil, fmt.Errorf("decode personal data: %w", err)
			}
			proto.Merge(m, secret.Interface())
			return marshalOpts.Marshal(m)
		}
		if !erased {
			// Sealed, and the store has neither the key nor a marker of an erasure.
			return nil, fmt.Errorf("open %s: customer %s: %w", env, env.AggregateID, ErrKeyLost)
		}
	}
	for _, p := range paths {
		markErased(r, strings.Split(p, "."))
	}
	return marshalOpts.Marshal(m)
}

// newEventMessage decodes a payload into the current message of its event type.
func newEventMessage(eventType string, payload []byte) (proto.Message, error) {
	k, ok := kinds[eventType]
	if !ok {
		return nil, fmt.Errorf("%w: %q", es.ErrUnknownEventType, eventType)
	}
	m := k.newMsg()
	if err := proto.Unmarshal(payload, m); err != nil {
		return nil, fmt.Errorf("decode %s: %w", eventType, err)
	}
	return m, nil
}

// moveField moves the field at path from src into dst (creating the messages on the way);
// false when it is not set.
func moveField(src, dst protoreflect.Message, path []string) bool {
	fd := src.Descriptor().Fields().ByName(protoreflect.Name(path[0]))
	if fd == nil || !src.Has(fd) {
		return false
	}
	if len(path) == 1 {
		dst.Set(fd, src.Get(fd))
		src.Clear(fd)
		return true
	}
	return moveField(src.Mutable(fd).Message(), dst.Mutable(fd).Message(), path[1:])
}

// markErased sets the text field at path to ErasedMarker and a number to zero, where the
// message on the way exists.
func markErased(m protoreflect.Message, path []string) {
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(path[0]))
	if fd == nil {
		return
	}
	if len(path) > 1 {
		if m.Has(fd) {
			markErased(m.Mutable(fd).Message(), path[1:])
		}
		return
	}
	if fd.Kind() == protoreflect.StringKind {
		m.Set(fd, protoreflect.ValueOfString(ErasedMarker))
		return
	}
	m.Clear(fd)
}

// SnapshotSealedSchemaVersion is the schema version of a sealed Customer snapshot: an
// orders.v1.SealedPersonalData whose ciphertext is a CustomerSnapshot (schema version 1).
const SnapshotSealedSchemaVersion = 2

// SealedCustomerSnapshots encodes Customer snapshots encrypted whole with the customer's data
// key, so that no personal data sits in clear in the snapshots table. It restores clear ones
// (schema version 1) too. An erased customer's snapshot no longer opens: the command service
// then replays the events, as for any unusable snapshot.
type SealedCustomerSnapshots struct {
	// Keys gives the data keys.
	Keys KeyStore
}

var _ es.SnapshotCodec = SealedCustomerSnapshots{}

// SchemaVersion returns SnapshotSealedSchemaVersion.
func (SealedCustomerSnapshots) SchemaVersion() int32 { return SnapshotSealedSchemaVersion }

// snapshotKeyTimeout bounds the key look-up of one snapshot (the codec has no context).
const snapshotKeyTimeout = 10 * time.Second

// Take encodes and encrypts a *customer.Customer.
func (c SealedCustomerSnapshots) Take(a es.Aggregate) ([]byte, error) {
	plain, err := CustomerSnapshotCodec{}.Take(a)
	if err != nil {
		return nil, err
	}
	if cu, ok := a.(*customer.Customer); ok && cu.Status == customer.StatusErased {
		// No personal data left to protect, and no key to protect it with.
		return marshalOpts.Marshal(&ordersv1.SealedPersonalData{Format: sealFormatClear, Ciphertext: plain})
	}
	ctx, cancel := context.WithTimeout(context.Background(), snapshotKeyTimeout)
	defer cancel()
	key, err := c.Keys.DataKey(ctx, a.AggregateID(), true)
	if err != nil {
		return nil, fmt.Errorf("customer %s snapshot: %w", a.AggregateID(), err)
	}
	ct, err := key.Encrypt(plain, piiAssociatedData(a.AggregateID(), "CustomerSnapshot"))
	if err != nil {
		return nil, fmt.Errorf("customer %s snapshot: encrypt: %w", a.AggregateID(), err)
	}
	return marshalOpts.Marshal(&ordersv1.SealedPersonalData{Format: SealFormatTinkAEAD, Ciphertext: ct})
}

// Restore decrypts (schema version 2) and restores a Customer snapshot.
func (c SealedCustomerSnapshots) Restore(s es.Snapshot) (es.Aggregate, error) {
	if s.SchemaVersion != SnapshotSealedSchemaVersion {
		return CustomerSnapshotCodec{}.Restore(s)
	}
	var sealed ordersv1.SealedPersonalData
	if err := proto.Unmarshal(s.State, &sealed); err != nil {
		return nil, fmt.Errorf("decode customer %s snapshot: %w", s.AggregateID, err)
	}
	switch sealed.GetFormat() {
	case sealFormatClear:
		s.State, s.SchemaVersion = sealed.GetCiphertext(), SnapshotSchemaVersion
		return CustomerSnapshotCodec{}.Restore(s)
	case SealFormatTinkAEAD:
	default:
		return nil, fmt.Errorf("customer %s snapshot: sealed format %d unknown", s.AggregateID, sealed.GetFormat())
	}
	ctx, cancel := context.WithTimeout(context.Background(), snapshotKeyTimeout)
	defer cancel()
	key, err := c.Keys.DataKey(ctx, s.AggregateID, false)
	if err != nil {
		return nil, fmt.Errorf("customer %s snapshot: %w", s.AggregateID, err)
	}
	pt, err := key.Decrypt(sealed.GetCiphertext(), piiAssociatedData(s.AggregateID, "CustomerSnapshot"))
	if err != nil {
		return nil, fmt.Errorf("customer %s snapshot: decrypt: %w", s.AggregateID, err)
	}
	s.State, s.SchemaVersion = pt, SnapshotSchemaVersion
	return CustomerSnapshotCodec{}.Restore(s)
}

// IsSealed reports whether a stored payload of the event type holds sealed personal data.
func IsSealed(eventType string, payload []byte) (bool, error) {
	if len(personalFields[eventType]) == 0 {
		return false, nil
	}
	m, err := newEventMessage(eventType, payload)
	if err != nil {
		return false, err
	}
	r := m.ProtoReflect()
	return r.Has(r.Descriptor().Fields().ByNumber(sealedField)), nil
}

// PersonalDataInClear reports whether a stored payload of the event type holds personal fields
// in clear (written before encryption, or without a KEK).
func PersonalDataInClear(eventType string, payload []byte) (bool, error) {
	_, moved, err := withoutPersonalData(eventType, payload)
	return moved, err
}

// StripPersonalData returns the payload without its personal fields in clear: what an erased
// customer's events written in clear become when they are migrated (there is no key to seal
// them with, and nobody may read them again).
func StripPersonalData(eventType string, payload []byte) ([]byte, error) {
	m, moved, err := withoutPersonalData(eventType, payload)
	if err != nil || !moved {
		return payload, err
	}
	return marshalOpts.Marshal(m)
}

// withoutPersonalData decodes the payload and clears its personal fields; moved says whether
// there was any (m is nil for an event type without personal fields).
func withoutPersonalData(eventType string, payload []byte) (m proto.Message, moved bool, err error) {
	paths := personalFields[eventType]
	if len(paths) == 0 {
		return nil, false, nil
	}
	if m, err = newEventMessage(eventType, payload); err != nil {
		return nil, false, err
	}
	scratch := m.ProtoReflect().New()
	for _, p := range paths {
		if moveField(m.ProtoReflect(), scratch, strings.Split(p, ".")) {
			moved = true
		}
	}
	return m, moved, nil
}
