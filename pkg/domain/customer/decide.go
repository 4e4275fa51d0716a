package customer

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
)

// Stable identifiers of the customer's business rules, carried by es.RuleError.Rule. The reasons
// of these rules name the rule, the field and the customer's status, never a personal value
// (a name, e-mail, phone, address or card detail): a reason is stored in clear with the
// command's record and in command_rejections, and sent in the FAILED_PRECONDITION status,
// which tracing records (docs/privacy.md).
const (
	// RuleDeactivated: a DEACTIVATED customer accepts no command but Erase.
	RuleDeactivated = "customer.deactivated"
	// RuleErased: an ERASED customer accepts no command at all.
	RuleErased = "customer.erased"
	// RuleRequiresActive: every command but Reactivate and Deactivate needs an ACTIVE customer.
	RuleRequiresActive = "customer.requires_active"
	// RuleReactivateRequiresSuspended: only a SUSPENDED customer can be reactivated.
	RuleReactivateRequiresSuspended = "customer.reactivate.requires_suspended"
	// RuleProfileUnchanged: an UpdateProfile must change the name.
	RuleProfileUnchanged = "customer.update_profile.unchanged"
	// RuleEmailUnchanged: a ChangeEmail must change the address.
	RuleEmailUnchanged = "customer.change_email.unchanged"
	// RulePhoneUnchanged: a ChangePhone must change the number.
	RulePhoneUnchanged = "customer.change_phone.unchanged"
	// RuleAddressIDTaken: AddAddress needs an id the customer does not use yet.
	RuleAddressIDTaken = "customer.add_address.id_taken"
	// RuleAddressLimit: a customer holds at most MaxAddresses addresses.
	RuleAddressLimit = "customer.add_address.limit_reached"
	// RuleAddressUnknown: UpdateAddress and RemoveAddress need an existing address.
	RuleAddressUnknown = "customer.address.unknown"
	// RulePaymentMethodIDTaken: AddPaymentMethod needs an id the customer does not use yet.
	RulePaymentMethodIDTaken = "customer.add_payment_method.id_taken"
	// RulePaymentMethodLimit: a customer holds at most MaxPaymentMethods payment methods.
	RulePaymentMethodLimit = "customer.add_payment_method.limit_reached"
	// RuleCardExpired: a card must not have expired when it is added.
	RuleCardExpired = "customer.add_payment_method.card_expired"
	// RulePaymentMethodUnknown: RemovePaymentMethod needs an existing payment method.
	RulePaymentMethodUnknown = "customer.payment_method.unknown"
	// RuleTierNotUpward: UpgradeTier must name a tier above the current one.
	RuleTierNotUpward = "customer.upgrade_tier.not_upward"
)

// Decide checks cmd against the customer's current state and returns the events it produces,
// without changing the state. It validates the input first (an *es.ValidationError), then
// existence (Register on an existing customer wraps es.ErrAlreadyExists; any other command on
// a customer at version 0 wraps es.ErrNotFound), then the business rules (an *es.RuleError).
// now is the decision time, against which card expiry is judged.
func (c *Customer) Decide(cmd Command, now time.Time) ([]es.Event, error) {
	if cmd == nil {
		return nil, errors.New("customer: nil command")
	}
	action, ok := actions(cmd)
	if !ok {
		return nil, fmt.Errorf("customer: unsupported command %T", cmd)
	}
	if err := cmd.Validate(); err != nil {
		return nil, err
	}
	if _, isRegister := cmd.(Register); isRegister {
		if c.Version() > 0 {
			return nil, fmt.Errorf("customer %s: %w", c.AggregateID(), es.ErrAlreadyExists)
		}
	} else if c.Version() == 0 {
		return nil, fmt.Errorf("customer %s: %w", c.AggregateID(), es.ErrNotFound)
	}
	if c.Status == StatusErased {
		return nil, es.Rule(RuleErased, "customer is ERASED; an erased customer cannot %s", action)
	}
	if _, isErase := cmd.(Erase); isErase {
		return []es.Event{CustomerErased{}}, nil // from ACTIVE, SUSPENDED or DEACTIVATED
	}
	if c.Status == StatusDeactivated {
		return nil, es.Rule(RuleDeactivated, "customer is DEACTIVATED; a deactivated customer cannot %s", action)
	}
	switch cmd.(type) {
	case Register:
	case Reactivate:
		if c.Status != StatusSuspended {
			return nil, es.Rule(RuleReactivateRequiresSuspended, "customer is %s; only a SUSPENDED customer can be reactivated", c.Status)
		}
	case Deactivate: // ACTIVE or SUSPENDED; DEACTIVATED was refused above
	default:
		if c.Status != StatusActive {
			return nil, es.Rule(RuleRequiresActive, "customer is %s; only an ACTIVE customer can %s", c.Status, action)
		}
	}
	ev, err := c.decide(cmd, now)
	if err != nil {
		return nil, err
	}
	return []es.Event{ev}, nil
}

// actions names what each command does, for rule reasons; ok is false for foreign types.
func actions(cmd Command) (action string, ok bool) {
	switch cmd.(type) {
	case Register:
		return "register", true
	case UpdateProfile:
		return "update the profile", true
	case ChangeEmail:
		return "change the email", true
	case ChangePhone:
		return "change the phone", true
	case AddAddress:
		return "add an address", true
	case UpdateAddress:
		return "update an address", true
	case RemoveAddress:
		return "remove an address", true
	case AddPaymentMethod:
		return "add a payment method", true
	case RemovePaymentMethod:
		return "remove a payment method", true
	case UpgradeTier:
		return "upgrade the tier", true
	case Suspend:
		return "be suspended", true
	case Reactivate:
		return "be reactivated", true
	case Deactivate:
		return "be deactivated", true
	case Erase:
		return "be erased", true
	}
	return "", false
}

// decide applies the command-specific rules to a validated command whose status is allowed.
func (c *Customer) decide(cmd Command, now time.Time) (es.Event, error) {
	switch cmd := cmd.(type) {
	case Register:
		id := ids.Canonical(cmd.CustomerID)
		if id != c.AggregateID() {
			return nil, es.Invalid("customer_id", fmt.Sprintf("is %s but the command was sent to customer %s", id, c.AggregateID()))
		}
		email, _ := NewEmail(cmd.Email)
		return CustomerRegistered{
			CustomerID: id,
			Email:      email,
			FirstName:  strings.TrimSpace(cmd.FirstName),
			LastName:   strings.TrimSpace(cmd.LastName),
			Phone:      optionalPhone(cmd.Phone),
			Tier:       TierBronze,
		}, nil

	case UpdateProfile:
		first, last := strings.TrimSpace(cmd.FirstName), strings.TrimSpace(cmd.LastName)
		if first == c.FirstName && last == c.LastName {
			return nil, es.Rule(RuleProfileUnchanged, "the name is unchanged; nothing to update")
		}
		return CustomerProfileUpdated{FirstName: first, LastName: last}, nil

	case ChangeEmail:
		email, _ := NewEmail(cmd.Email)
		if email == c.Email {
			return nil, es.Rule(RuleEmailUnchanged, "the email is unchanged; nothing to change")
		}
		return CustomerEmailChanged{OldEmail: c.Email, NewEmail: email}, nil

	case ChangePhone:
		phone := optionalPhone(cmd.Phone)
		if phone == c.Phone {
			if phone == "" {
				return nil, es.Rule(RulePhoneUnchanged, "the customer has no phone; nothing to remove")
			}
			return nil, es.Rule(RulePhoneUnchanged, "the phone is unchanged; nothing to change")
		}
		return CustomerPhoneChanged{OldPhone: c.Phone, NewPhone: phone}, nil

	case AddAddress:
		a := cmd.Address.Normalized()
		if _, taken := c.Address(a.AddressID); taken {
			return nil, es.Rule(RuleAddressIDTaken, "the customer already has an address %s", a.AddressID)
		}
		if len(c.Addresses) >= MaxAddresses {
			return nil, es.Rule(RuleAddressLimit, "the customer already has %d addresses, the most allowed; remove one first", len(c.Addresses))
		}
		if len(c.Addresses) == 0 {
			a.IsDefault = true
		}
		return CustomerAddressAdded{Address: a}, nil

	case UpdateAddress:
		a := cmd.Address.Normalized()
		old, ok := c.Address(a.AddressID)
		if !ok {
			return nil, es.Rule(RuleAddressUnknown, "the customer has no address %s", a.AddressID)
		}
		a.AddressID = old.AddressID
		a.IsDefault = a.IsDefault || old.IsDefault
		return CustomerAddressUpdated{Address: a}, nil

	case RemoveAddress:
		old, ok := c.Address(ids.Canonical(cmd.AddressID))
		if !ok {
			return nil, es.Rule(RuleAddressUnknown, "the customer has no address %s", ids.Canonical(cmd.AddressID))
		}
		return CustomerAddressRemoved{AddressID: old.AddressID}, nil

	case AddPaymentMethod:
		p := cmd.PaymentMethod.Normalized()
		if _, taken := c.PaymentMethod(p.PaymentMethodID); taken {
			return nil, es.Rule(RulePaymentMethodIDTaken, "the customer already has a payment method %s", p.PaymentMethodID)
		}
		if len(c.PaymentMethods) >= MaxPaymentMethods {
			return nil, es.Rule(RulePaymentMethodLimit, "the customer already has %d payment methods, the most allowed; remove one first", len(c.PaymentMethods))
		}
		if p.ExpiredAt(now) {
			return nil, es.Rule(RuleCardExpired, "the card's expiry month (payment_method.exp_month, exp_year) has passed; a card must not have expired when it is added")
		}
		if len(c.PaymentMethods) == 0 {
			p.IsDefault = true
		}
		return CustomerPaymentMethodAdded{PaymentMethod: p}, nil

	case RemovePaymentMethod:
		old, ok := c.PaymentMethod(ids.Canonical(cmd.PaymentMethodID))
		if !ok {
			return nil, es.Rule(RulePaymentMethodUnknown, "the customer has no payment method %s", ids.Canonical(cmd.PaymentMethodID))
		}
		return CustomerPaymentMethodRemoved{PaymentMethodID: old.PaymentMethodID}, nil

	case UpgradeTier:
		if cmd.Tier <= c.Tier {
			return nil, es.Rule(RuleTierNotUpward, "customer is %s; a tier upgrade must go above it, not to %s", c.Tier, cmd.Tier)
		}
		return CustomerTierUpgraded{OldTier: c.Tier, NewTier: cmd.Tier}, nil

	case Suspend:
		return CustomerSuspended{Reason: strings.TrimSpace(cmd.Reason)}, nil

	case Reactivate:
		return CustomerReactivated{}, nil

	case Deactivate:
		return CustomerDeactivated{Reason: strings.TrimSpace(cmd.Reason)}, nil
	}
	return nil, fmt.Errorf("customer: unsupported command %T", cmd)
}

// optionalPhone normalizes a validated phone number; blank input means no phone.
func optionalPhone(s string) PhoneNumber {
	if strings.TrimSpace(s) == "" {
		return ""
	}
	p, _ := NewPhoneNumber(s)
	return p
}
