package customer

// Event type names, as stored in every envelope.
const (
	// EventCustomerRegistered names CustomerRegistered.
	EventCustomerRegistered = "CustomerRegistered"
	// EventCustomerProfileUpdated names CustomerProfileUpdated.
	EventCustomerProfileUpdated = "CustomerProfileUpdated"
	// EventCustomerEmailChanged names CustomerEmailChanged.
	EventCustomerEmailChanged = "CustomerEmailChanged"
	// EventCustomerPhoneChanged names CustomerPhoneChanged.
	EventCustomerPhoneChanged = "CustomerPhoneChanged"
	// EventCustomerAddressAdded names CustomerAddressAdded.
	EventCustomerAddressAdded = "CustomerAddressAdded"
	// EventCustomerAddressUpdated names CustomerAddressUpdated.
	EventCustomerAddressUpdated = "CustomerAddressUpdated"
	// EventCustomerAddressRemoved names CustomerAddressRemoved.
	EventCustomerAddressRemoved = "CustomerAddressRemoved"
	// EventCustomerPaymentMethodAdded names CustomerPaymentMethodAdded.
	EventCustomerPaymentMethodAdded = "CustomerPaymentMethodAdded"
	// EventCustomerPaymentMethodRemoved names CustomerPaymentMethodRemoved.
	EventCustomerPaymentMethodRemoved = "CustomerPaymentMethodRemoved"
	// EventCustomerTierUpgraded names CustomerTierUpgraded.
	EventCustomerTierUpgraded = "CustomerTierUpgraded"
	// EventCustomerSuspended names CustomerSuspended.
	EventCustomerSuspended = "CustomerSuspended"
	// EventCustomerReactivated names CustomerReactivated.
	EventCustomerReactivated = "CustomerReactivated"
	// EventCustomerDeactivated names CustomerDeactivated.
	EventCustomerDeactivated = "CustomerDeactivated"
	// EventCustomerErased names CustomerErased.
	EventCustomerErased = "CustomerErased"
)

// CustomerRegistered records that a new customer account was created, at tier Bronze.
type CustomerRegistered struct {
	// CustomerID is the customer's UUID.
	CustomerID string
	// Email is the contact address.
	Email Email
	// FirstName is the given name.
	FirstName string
	// LastName is the family name.
	LastName string
	// Phone is the E.164 phone number (empty when none was given).
	Phone PhoneNumber
	// Tier is the initial tier (always TierBronze).
	Tier Tier
}

// EventType returns "CustomerRegistered".
func (CustomerRegistered) EventType() string { return EventCustomerRegistered }

// CustomerProfileUpdated records that the customer's name changed.
type CustomerProfileUpdated struct {
	// FirstName is the new given name.
	FirstName string
	// LastName is the new family name.
	LastName string
}

// EventType returns "CustomerProfileUpdated".
func (CustomerProfileUpdated) EventType() string { return EventCustomerProfileUpdated }

// CustomerEmailChanged records that the customer's email address changed.
type CustomerEmailChanged struct {
	// OldEmail is the previous address.
	OldEmail Email
	// NewEmail is the new address.
	NewEmail Email
}

// EventType returns "CustomerEmailChanged".
func (CustomerEmailChanged) EventType() string { return EventCustomerEmailChanged }

// CustomerPhoneChanged records that the customer's phone number changed (NewPhone empty: removed).
type CustomerPhoneChanged struct {
	// OldPhone is the previous number.
	OldPhone PhoneNumber
	// NewPhone is the new number.
	NewPhone PhoneNumber
}

// EventType returns "CustomerPhoneChanged".
func (CustomerPhoneChanged) EventType() string { return EventCustomerPhoneChanged }

// CustomerAddressAdded records that an address was added; a default address makes the others non-default.
type CustomerAddressAdded struct {
	// Address is the added address.
	Address Address
}

// EventType returns "CustomerAddressAdded".
func (CustomerAddressAdded) EventType() string { return EventCustomerAddressAdded }

// CustomerAddressUpdated records that the address with the same id was replaced.
type CustomerAddressUpdated struct {
	// Address is the new content of the address.
	Address Address
}

// EventType returns "CustomerAddressUpdated".
func (CustomerAddressUpdated) EventType() string { return EventCustomerAddressUpdated }

// CustomerAddressRemoved records that an address was removed; if it was the default, the first remaining address becomes the default.
type CustomerAddressRemoved struct {
	// AddressID names the removed address.
	AddressID string
}

// EventType returns "CustomerAddressRemoved".
func (CustomerAddressRemoved) EventType() string { return EventCustomerAddressRemoved }

// CustomerPaymentMethodAdded records that a payment method was added; a default one makes the others non-default.
type CustomerPaymentMethodAdded struct {
	// PaymentMethod is the added payment method.
	PaymentMethod PaymentMethod
}

// EventType returns "CustomerPaymentMethodAdded".
func (CustomerPaymentMethodAdded) EventType() string { return EventCustomerPaymentMethodAdded }

// CustomerPaymentMethodRemoved records that a payment method was removed; if it was the default, the first remaining one becomes the default.
type CustomerPaymentMethodRemoved struct {
	// PaymentMethodID names the removed payment method.
	PaymentMethodID string
}

// EventType returns "CustomerPaymentMethodRemoved".
func (CustomerPaymentMethodRemoved) EventType() string { return EventCustomerPaymentMethodRemoved }

// CustomerTierUpgraded records that the customer moved to a higher tier.
type CustomerTierUpgraded struct {
	// OldTier is the tier before.
	OldTier Tier
	// NewTier is the tier after.
	NewTier Tier
}

// EventType returns "CustomerTierUpgraded".
func (CustomerTierUpgraded) EventType() string { return EventCustomerTierUpgraded }

// CustomerSuspended records that the account was suspended.
type CustomerSuspended struct {
	// Reason says why.
	Reason string
}

// EventType returns "CustomerSuspended".
func (CustomerSuspended) EventType() string { return EventCustomerSuspended }

// CustomerReactivated records that a suspended account became active again.
type CustomerReactivated struct{}

// EventType returns "CustomerReactivated".
func (CustomerReactivated) EventType() string { return EventCustomerReactivated }

// CustomerDeactivated records that the account was closed for good.
type CustomerDeactivated struct {
	// Reason says why.
	Reason string
}

// EventType returns "CustomerDeactivated".
func (CustomerDeactivated) EventType() string { return EventCustomerDeactivated }

// CustomerErased records that the customer's personal data was erased on request: applying it
// drops every personal field of the state (name, email, phone, addresses, payment methods); id,
// tier, status and dates remain.
type CustomerErased struct{}

// EventType returns "CustomerErased".
func (CustomerErased) EventType() string { return EventCustomerErased }
