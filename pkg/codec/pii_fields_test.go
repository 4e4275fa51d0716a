package codec_test

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// inClear lists, as "<EventType>.<field path>", every field of a Customer event that is stored
// in clear on purpose, with the reason. Every other field must be sealed (codec.PersonalFields):
// a field added to a Customer event is refused by TestEveryCustomerFieldIsClassified until it
// is put in one of the two lists.
var inClear = map[string]string{
	"CustomerRegistered.customer_id":                              "the aggregate id, a random UUID",
	"CustomerRegistered.tier":                                     "a loyalty tier, an enum of four values",
	"CustomerAddressAdded.address.address_id":                     "a random UUID chosen by the client",
	"CustomerAddressAdded.address.is_default":                     "a flag",
	"CustomerAddressUpdated.address.address_id":                   "a random UUID chosen by the client",
	"CustomerAddressUpdated.address.is_default":                   "a flag",
	"CustomerAddressRemoved.address_id":                           "a random UUID chosen by the client",
	"CustomerPaymentMethodAdded.payment_method.payment_method_id": "a random UUID chosen by the client",
	"CustomerPaymentMethodAdded.payment_method.kind":              "card, bank account or wallet: an enum",
	"CustomerPaymentMethodAdded.payment_method.last4":             "the last four digits, masked already (docs/privacy.md)",
	"CustomerPaymentMethodAdded.payment_method.is_default":        "a flag",
	"CustomerPaymentMethodRemoved.payment_method_id":              "a random UUID chosen by the client",
	"CustomerTierUpgraded.old_tier":                               "a loyalty tier, an enum",
	"CustomerTierUpgraded.new_tier":                               "a loyalty tier, an enum",
	"CustomerSuspended.reason":                                    "staff's free text, not classified personal (docs/privacy.md: do not put personal data there)",
	"CustomerDeactivated.reason":                                  "staff's free text, not classified personal (docs/privacy.md: do not put personal data there)",
}

// TestEveryCustomerFieldIsClassified walks, with protoreflect, the message of every event type
// the registry has for the Customer aggregate: every scalar field (text, bytes, number, flag,
// enum) at any depth is either sealed (codec.PersonalFields) or listed in inClear, never both;
// every sealed path names a field that exists; an event with sealed fields has the
// SealedPersonalData field the sealer fills; every entry of inClear is used.
func TestEveryCustomerFieldIsClassified(t *testing.T) {
	reg := codec.NewRegistry()
	sealedType := (&ordersv1.SealedPersonalData{}).ProtoReflect().Descriptor().FullName()
	used := map[string]bool{}
	customers := 0
	for _, eventType := range reg.EventTypes() {
		if at, err := reg.AggregateTypeOf(eventType); err != nil || at != customer.AggregateType {
			continue
		}
		customers++
		mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName("orders.v1." + eventType))
		if err != nil {
			t.Errorf("%s: no message orders.v1.%s: %v", eventType, eventType, err)
			continue
		}
		sealed := codec.PersonalFields(eventType)
		if len(sealed) > 0 {
			fd := mt.Descriptor().Fields().ByName("sealed")
			if fd == nil || fd.Number() != 15 || fd.Message() == nil || fd.Message().FullName() != sealedType {
				t.Errorf("%s has personal fields but no field 15 sealed of type %s", eventType, sealedType)
			}
		}
		leaves := map[string]bool{}
		walk(t, eventType, mt.Descriptor(), "", sealedType, leaves)
		for _, p := range sealed {
			if !leaves[p] {
				t.Errorf("%s: personal field %q is no scalar field of the message", eventType, p)
			}
		}
		for p := range leaves {
			key := eventType + "." + p
			_, clear := inClear[key]
			used[key] = clear
			switch isSealed := slices.Contains(sealed, p); {
			case isSealed && clear:
				t.Errorf("%s is both sealed and listed in clear", key)
			case !isSealed && !clear:
				t.Errorf("%s is neither sealed (personalFields in pkg/codec/pii.go) nor listed in inClear with a reason: "+
					"seal it if it can identify a person", key)
			}
		}
	}
	if customers < 10 {
		t.Fatalf("only %d Customer event types registered", customers)
	}
	for key := range inClear {
		if !used[key] {
			t.Errorf("inClear lists %s, which is no field of a Customer event", key)
		}
	}
}

// walk records the dotted path of every scalar field of md under prefix in leaves, descending
// into singular message fields. The sealed field itself (the ciphertext) is skipped; a repeated
// or map field is refused: the sealer moves singular fields only.
func walk(t *testing.T, eventType string, md protoreflect.MessageDescriptor, prefix string, sealedType protoreflect.FullName, leaves map[string]bool) {
	t.Helper()
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		path := strings.TrimPrefix(prefix+"."+string(fd.Name()), ".")
		switch {
		case fd.IsList() || fd.IsMap():
			t.Errorf("%s.%s is a repeated field: the sealer cannot move it, classify its elements another way", eventType, path)
		case fd.Message() != nil && fd.Message().FullName() == sealedType:
		case fd.Message() != nil:
			walk(t, eventType, fd.Message(), path, sealedType, leaves)
		default:
			leaves[path] = true
		}
	}
}
