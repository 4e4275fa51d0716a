// Package customer is the Customer aggregate of ordersys: its state, value objects (email,
// phone number, address, payment method, tier), the commands it accepts, the events it emits and
// the rules that decide between them.
//
// Decide checks a command against the current state and returns the events it produces without
// changing the state; Apply changes the state by one event and never refuses an event the
// aggregate decided, so stored history always replays. The package imports only the standard
// library and the event-sourcing core.
package customer

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ordersys/ordersys/pkg/es"
)

// AggregateType is the aggregate kind recorded in every Customer envelope and snapshot.
const AggregateType = "Customer"

// Tier is a customer's loyalty tier. Tiers are ordered: Bronze < Silver < Gold < Platinum, and
// the numbers match the protobuf enum orders.v1.CustomerTier.
type Tier int32

const (
	// TierUnspecified is the zero value; no customer has it.
	TierUnspecified Tier = iota
	// TierBronze is the entry tier, given at registration.
	TierBronze
	// TierSilver is above Bronze.
	TierSilver
	// TierGold is above Silver.
	TierGold
	// TierPlatinum is the highest tier.
	TierPlatinum
)

// String returns the tier name in upper case, e.g. "GOLD".
func (t Tier) String() string {
	switch t {
	case TierUnspecified:
		return "UNSPECIFIED"
	case TierBronze:
		return "BRONZE"
	case TierSilver:
		return "SILVER"
	case TierGold:
		return "GOLD"
	case TierPlatinum:
		return "PLATINUM"
	default:
		return fmt.Sprintf("Tier(%d)", int32(t))
	}
}

// Valid reports whether t is one of Bronze, Silver, Gold and Platinum.
func (t Tier) Valid() bool { return t >= TierBronze && t <= TierPlatinum }

// ParseTier returns the tier with the given upper-case name ("BRONZE", …).
func ParseTier(name string) (Tier, error) {
	for t := TierBronze; t <= TierPlatinum; t++ {
		if t.String() == name {
			return t, nil
		}
	}
	return TierUnspecified, fmt.Errorf("unknown customer tier %q", name)
}

// Status is a customer account's state. The numbers match orders.v1.CustomerStatus.
type Status int32

const (
	// StatusUnspecified is the zero value: the customer is not registered.
	StatusUnspecified Status = iota
	// StatusActive is an account in good standing.
	StatusActive
	// StatusSuspended is a temporarily blocked account; it can be reactivated.
	StatusSuspended
	// StatusDeactivated is a closed account; only Erase is still accepted.
	StatusDeactivated
	// StatusErased is an account whose personal data was erased; it is final.
	StatusErased
)

// String returns the status name in upper case, e.g. "ACTIVE".
func (s Status) String() string {
	switch s {
	case StatusUnspecified:
		return "UNSPECIFIED"
	case StatusActive:
		return "ACTIVE"
	case StatusSuspended:
		return "SUSPENDED"
	case StatusDeactivated:
		return "DEACTIVATED"
	case StatusErased:
		return "ERASED"
	default:
		return fmt.Sprintf("Status(%d)", int32(s))
	}
}

// Customer is the Customer aggregate's state.
type Customer struct {
	es.Root
	// Email is the contact address.
	Email Email
	// FirstName is the given name.
	FirstName string
	// LastName is the family name.
	LastName string
	// Phone is the E.164 phone number, empty when none was given.
	Phone PhoneNumber
	// Addresses are the postal addresses in the order they were added; when there is any,
	// exactly one is the default.
	Addresses []Address
	// PaymentMethods are the payment instruments in the order they were added; when there is
	// any, exactly one is the default.
	PaymentMethods []PaymentMethod
	// Tier is the loyalty tier.
	Tier Tier
	// Status is the account state.
	Status Status
	// CreatedAt is when the customer registered (UTC).
	CreatedAt time.Time
	// UpdatedAt is when the last event happened (UTC).
	UpdatedAt time.Time
}

// New returns the customer with the given id at version 0, before registration.
func New(id string) *Customer { return &Customer{Root: es.NewRoot(id)} }

// AggregateType returns "Customer".
func (c *Customer) AggregateType() string { return AggregateType }

// Address returns the address with the given id (compared case-insensitively).
func (c *Customer) Address(id string) (Address, bool) {
	if i := c.addressIndex(id); i >= 0 {
		return c.Addresses[i], true
	}
	return Address{}, false
}

// PaymentMethod returns the payment method with the given id (compared case-insensitively).
func (c *Customer) PaymentMethod(id string) (PaymentMethod, bool) {
	if i := c.paymentMethodIndex(id); i >= 0 {
		return c.PaymentMethods[i], true
	}
	return PaymentMethod{}, false
}

func (c *Customer) addressIndex(id string) int {
	return slices.IndexFunc(c.Addresses, func(a Address) bool { return strings.EqualFold(a.AddressID, id) })
}

func (c *Customer) paymentMethodIndex(id string) int {
	return slices.IndexFunc(c.PaymentMethods, func(p PaymentMethod) bool { return strings.EqualFold(p.PaymentMethodID, id) })
}

// Apply changes the state by one event that occurred at the given time. It never writes into a
// slice the state held before, so a shallow copy of a Customer stays intact. The first event must be
// CustomerRegistered, and it only ever comes first; beyond that Apply checks no rule. Apply keeps
// one default address and one default payment method: adding or updating a default clears the
// others, and removing the default makes the first remaining entry the default.
func (c *Customer) Apply(e es.Event, at time.Time) error {
	registered := c.Status != StatusUnspecified
	if _, isRegister := e.(CustomerRegistered); isRegister == registered {
		if registered {
			return fmt.Errorf("customer %s: %s after the customer registered", c.AggregateID(), e.EventType())
		}
		return fmt.Errorf("customer %s: first event is %s, want CustomerRegistered", c.AggregateID(), e.EventType())
	}
	at = at.UTC()
	switch ev := e.(type) {
	case CustomerRegistered:
		c.Email, c.FirstName, c.LastName, c.Phone = ev.Email, ev.FirstName, ev.LastName, ev.Phone
		c.Tier = ev.Tier
		c.Status = StatusActive
		c.CreatedAt = at
	case CustomerProfileUpdated:
		c.FirstName, c.LastName = ev.FirstName, ev.LastName
	case CustomerEmailChanged:
		c.Email = ev.NewEmail
	case CustomerPhoneChanged:
		c.Phone = ev.NewPhone
	case CustomerAddressAdded:
		c.Addresses = append(slices.Clip(c.Addresses), ev.Address)
		if ev.Address.IsDefault {
			c.defaultAddress(len(c.Addresses) - 1)
		}
	case CustomerAddressUpdated:
		i := c.addressIndex(ev.Address.AddressID)
		if i < 0 {
			return fmt.Errorf("customer %s: %s of unknown address %s", c.AggregateID(), e.EventType(), ev.Address.AddressID)
		}
		c.Addresses = slices.Clone(c.Addresses)
		c.Addresses[i] = ev.Address
		if ev.Address.IsDefault {
			c.defaultAddress(i)
		}
	case CustomerAddressRemoved:
		i := c.addressIndex(ev.AddressID)
		if i < 0 {
			return fmt.Errorf("customer %s: %s of unknown address %s", c.AggregateID(), e.EventType(), ev.AddressID)
		}
		wasDefault := c.Addresses[i].IsDefault
		c.Addresses = slices.Delete(slices.Clone(c.Addresses), i, i+1)
		if len(c.Addresses) == 0 {
			c.Addresses = nil
		} else if wasDefault {
			c.defaultAddress(0)
		}
	case CustomerPaymentMethodAdded:
		c.PaymentMethods = append(slices.Clip(c.PaymentMethods), ev.PaymentMethod)
		if ev.PaymentMethod.IsDefault {
			c.defaultPaymentMethod(len(c.PaymentMethods) - 1)
		}
	case CustomerPaymentMethodRemoved:
		i := c.paymentMethodIndex(ev.PaymentMethodID)
		if i < 0 {
			return fmt.Errorf("customer %s: %s of unknown payment method %s", c.AggregateID(), e.EventType(), ev.PaymentMethodID)
		}
		wasDefault := c.PaymentMethods[i].IsDefault
		c.PaymentMethods = slices.Delete(slices.Clone(c.PaymentMethods), i, i+1)
		if len(c.PaymentMethods) == 0 {
			c.PaymentMethods = nil
		} else if wasDefault {
			c.defaultPaymentMethod(0)
		}
	case CustomerTierUpgraded:
		c.Tier = ev.NewTier
	case CustomerSuspended:
		c.Status = StatusSuspended
	case CustomerReactivated:
		c.Status = StatusActive
	case CustomerDeactivated:
		c.Status = StatusDeactivated
	case CustomerErased:
		c.Email, c.FirstName, c.LastName, c.Phone = "", "", "", ""
		c.Addresses, c.PaymentMethods = nil, nil
		c.Status = StatusErased
	default:
		return fmt.Errorf("customer %s: unexpected event %T (%s)", c.AggregateID(), e, e.EventType())
	}
	c.UpdatedAt = at
	return nil
}

// defaultAddress makes the address at index i the only default.
func (c *Customer) defaultAddress(i int) {
	for j := range c.Addresses {
		c.Addresses[j].IsDefault = j == i
	}
}

// defaultPaymentMethod makes the payment method at index i the only default.
func (c *Customer) defaultPaymentMethod(i int) {
	for j := range c.PaymentMethods {
		c.PaymentMethods[j].IsDefault = j == i
	}
}
