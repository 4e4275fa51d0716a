package customer

import (
	"strings"

	"github.com/ordersys/ordersys/pkg/domain/check"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
)

// Command is a request to change a customer. The set of commands is closed: only the types of
// this package implement it. Commands carry raw input; Validate builds the value objects and
// names every malformed field.
type Command interface {
	// Validate checks the command's input regardless of the customer's state and returns an
	// *es.ValidationError naming every bad field, or nil.
	Validate() error
	isCustomerCommand()
}

// Register creates a customer account.
type Register struct {
	// CustomerID is the new customer's UUID; it must be the id of the aggregate deciding.
	CustomerID string
	// Email is the contact address (see NewEmail).
	Email string
	// FirstName is required, 1 to MaxNameLen characters after trimming.
	FirstName string
	// LastName is required, 1 to MaxNameLen characters after trimming.
	LastName string
	// Phone is optional; when given it must be E.164 (see NewPhoneNumber).
	Phone string
}

// UpdateProfile changes the customer's name.
type UpdateProfile struct {
	// FirstName is required, 1 to MaxNameLen characters after trimming.
	FirstName string
	// LastName is required, 1 to MaxNameLen characters after trimming.
	LastName string
}

// ChangeEmail replaces the contact address.
type ChangeEmail struct {
	// Email is the new address (see NewEmail).
	Email string
}

// ChangePhone replaces the phone number; an empty Phone removes it.
type ChangePhone struct {
	// Phone is the new number (see NewPhoneNumber), or empty.
	Phone string
}

// AddAddress adds a postal address under a new client-chosen id.
type AddAddress struct {
	// Address is the new address; the first address a customer gets is always the default.
	Address Address
}

// UpdateAddress replaces the address with the same id.
type UpdateAddress struct {
	// Address is the new content; Address.AddressID names the address to replace. The default
	// address stays the default even if IsDefault is false: the default moves only when another
	// address is made the default.
	Address Address
}

// RemoveAddress removes an address.
type RemoveAddress struct {
	// AddressID names the address to remove.
	AddressID string
}

// AddPaymentMethod adds a payment instrument under a new client-chosen id.
type AddPaymentMethod struct {
	// PaymentMethod is the new instrument; the first one a customer gets is always the default.
	PaymentMethod PaymentMethod
}

// RemovePaymentMethod removes a payment instrument.
type RemovePaymentMethod struct {
	// PaymentMethodID names the payment method to remove.
	PaymentMethodID string
}

// UpgradeTier moves the customer to a higher tier.
type UpgradeTier struct {
	// Tier is the new tier; it must be above the current one.
	Tier Tier
}

// Suspend blocks an active account temporarily.
type Suspend struct {
	// Reason is required, at most MaxReasonLen characters.
	Reason string
}

// Reactivate makes a suspended account active again.
type Reactivate struct{}

// Deactivate closes an active or suspended account for good.
type Deactivate struct {
	// Reason is required, at most MaxReasonLen characters.
	Reason string
}

// Erase erases the customer's personal data for good (right to erasure). It is accepted in every
// status but ERASED.
type Erase struct{}

func (Register) isCustomerCommand()            {}
func (Erase) isCustomerCommand()               {}
func (UpdateProfile) isCustomerCommand()       {}
func (ChangeEmail) isCustomerCommand()         {}
func (ChangePhone) isCustomerCommand()         {}
func (AddAddress) isCustomerCommand()          {}
func (UpdateAddress) isCustomerCommand()       {}
func (RemoveAddress) isCustomerCommand()       {}
func (AddPaymentMethod) isCustomerCommand()    {}
func (RemovePaymentMethod) isCustomerCommand() {}
func (UpgradeTier) isCustomerCommand()         {}
func (Suspend) isCustomerCommand()             {}
func (Reactivate) isCustomerCommand()          {}
func (Deactivate) isCustomerCommand()          {}

// Validate checks the id, the email, the names and the optional phone.
func (c Register) Validate() error {
	var v es.Violations
	check.UUID(&v, "customer_id", ids.Canonical(c.CustomerID))
	_, err := NewEmail(c.Email)
	v.Merge("email", err)
	check.PlainText(&v, "first_name", c.FirstName, MaxNameLen, true)
	check.PlainText(&v, "last_name", c.LastName, MaxNameLen, true)
	if strings.TrimSpace(c.Phone) != "" {
		_, err := NewPhoneNumber(c.Phone)
		v.Merge("phone", err)
	}
	return v.Err()
}

// Validate checks the names.
func (c UpdateProfile) Validate() error {
	var v es.Violations
	check.PlainText(&v, "first_name", c.FirstName, MaxNameLen, true)
	check.PlainText(&v, "last_name", c.LastName, MaxNameLen, true)
	return v.Err()
}

// Validate checks the email.
func (c ChangeEmail) Validate() error {
	var v es.Violations
	_, err := NewEmail(c.Email)
	v.Merge("email", err)
	return v.Err()
}

// Validate checks the phone number unless it is empty.
func (c ChangePhone) Validate() error {
	var v es.Violations
	if strings.TrimSpace(c.Phone) != "" {
		_, err := NewPhoneNumber(c.Phone)
		v.Merge("phone", err)
	}
	return v.Err()
}

// Validate checks the address; field paths start with "address.".
func (c AddAddress) Validate() error {
	var v es.Violations
	v.Merge("address", c.Address.Validate())
	return v.Err()
}

// Validate checks the address; field paths start with "address.".
func (c UpdateAddress) Validate() error {
	var v es.Violations
	v.Merge("address", c.Address.Validate())
	return v.Err()
}

// Validate checks the address id.
func (c RemoveAddress) Validate() error {
	var v es.Violations
	check.UUID(&v, "address_id", ids.Canonical(c.AddressID))
	return v.Err()
}

// Validate checks the payment method; field paths start with "payment_method.".
func (c AddPaymentMethod) Validate() error {
	var v es.Violations
	v.Merge("payment_method", c.PaymentMethod.Validate())
	return v.Err()
}

// Validate checks the payment method id.
func (c RemovePaymentMethod) Validate() error {
	var v es.Violations
	check.UUID(&v, "payment_method_id", ids.Canonical(c.PaymentMethodID))
	return v.Err()
}

// Validate checks that the tier is a real one.
func (c UpgradeTier) Validate() error {
	if !c.Tier.Valid() {
		return es.Invalid("tier", "must be BRONZE, SILVER, GOLD or PLATINUM, got "+c.Tier.String())
	}
	return nil
}

// Validate checks the reason.
func (c Suspend) Validate() error {
	var v es.Violations
	check.PlainText(&v, "reason", c.Reason, MaxReasonLen, true)
	return v.Err()
}

// Validate accepts every Reactivate: it has no input.
func (Reactivate) Validate() error { return nil }

// Validate checks the reason.
func (c Deactivate) Validate() error {
	var v es.Violations
	check.PlainText(&v, "reason", c.Reason, MaxReasonLen, true)
	return v.Err()
}

// Validate accepts every Erase: it has no input.
func (Erase) Validate() error { return nil }
