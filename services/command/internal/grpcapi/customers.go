package grpcapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/domain/customer"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/services/command/internal/app"
)

// CustomerServer implements orders.v1.CustomerCommandService on the customer handler.
type CustomerServer struct {
	ordersv1.UnimplementedCustomerCommandServiceServer
	h    *app.CustomerHandler
	keys Eraser
}

// Eraser deletes a customer's data key for good (pkg/pii.Store).
type Eraser interface {
	Erase(ctx context.Context, customerID string) error
}

var _ ordersv1.CustomerCommandServiceServer = (*CustomerServer)(nil)

// NewCustomerServer returns the gRPC customer command service executing through h, erasing
// data keys through keys.
func NewCustomerServer(h *app.CustomerHandler, keys Eraser) *CustomerServer {
	return &CustomerServer{h: h, keys: keys}
}

func (s *CustomerServer) run(ctx context.Context, method, id string, req commandRequest, cmd customer.Command) (app.Result, error) {
	res, err := execute(ctx, s.h, call[customer.Command]{method: method, idField: "customer_id", id: id, req: req, cmd: cmd})
	return res, unknownPartIsNotFound(err)
}

// unknownPartIsNotFound turns the rejections "no such address" and "no such payment method"
// into not-found errors, as the CustomerCommandService contract promises NOT_FOUND for an
// unknown customer, address or payment method.
func unknownPartIsNotFound(err error) error {
	var re *es.RuleError
	if errors.As(err, &re) && (re.Rule == customer.RuleAddressUnknown || re.Rule == customer.RulePaymentMethodUnknown) {
		return fmt.Errorf("%s (%s): %w", re.Reason, re.Rule, es.ErrNotFound)
	}
	return err
}

// RegisterCustomer creates a customer.
func (s *CustomerServer) RegisterCustomer(ctx context.Context, req *ordersv1.RegisterCustomerRequest) (*ordersv1.RegisterCustomerResponse, error) {
	id := ids.Canonical(req.GetCustomerId())
	r, err := s.run(ctx, ordersv1.CustomerCommandService_RegisterCustomer_FullMethodName, id, req, customer.Register{
		CustomerID: id, Email: req.GetEmail(), FirstName: req.GetFirstName(), LastName: req.GetLastName(), Phone: req.GetPhone(),
	})
	if err != nil {
		return nil, err
	}
	return &ordersv1.RegisterCustomerResponse{AggregateId: r.AggregateID, Version: r.Version, EventIds: r.EventIDs}, nil
}

// UpdateProfile changes the customer's name.
func (s *CustomerServer) UpdateProfile(ctx context.Context, req *ordersv1.UpdateProfileRequest) (*ordersv1.UpdateProfileResponse, error) {
	r, err := s.run(ctx, ordersv1.CustomerCommandService_UpdateProfile_FullMethodName, ids.Canonical(req.GetCustomerId()), req, customer.UpdateProfile{
		FirstName: req.GetFirstName(), LastName: req.GetLastName(),
	})
	if err != nil {
		return nil, err
	}
	return &ordersv1.UpdateProfileResponse{AggregateId: r.AggregateID, Version: r.Version, EventIds: r.EventIDs}, nil
}

// ChangeEmail replaces the customer's email address.
func (s *CustomerServer) ChangeEmail(ctx context.Context, req *ordersv1.ChangeEmailRequest) (*ordersv1.ChangeEmailResponse, error) {
	r, err := s.run(ctx, ordersv1.CustomerCommandService_ChangeEmail_FullMethodName, ids.Canonical(req.GetCustomerId()), req, customer.ChangeEmail{
		Email: req.GetEmail(),
	})
	if err != nil {
		return nil, err
	}
	return &ordersv1.ChangeEmailResponse{AggregateId: r.AggregateID, Version: r.Version, EventIds: r.EventIDs}, nil
}

// ChangePhone replaces (or, with an empty phone, removes) the customer's phone number.
func (s *CustomerServer) ChangePhone(ctx context.Context, req *ordersv1.ChangePhoneRequest) (*ordersv1.ChangePhoneResponse, error) {
	r, err := s.run(ctx, ordersv1.CustomerCommandService_ChangePhone_FullMethodName, ids.Canonical(req.GetCustomerId()), req, customer.ChangePhone{
		Phone: req.GetPhone(),
	})
	if err != nil {
		return nil, err
	}
	return &ordersv1.ChangePhoneResponse{AggregateId: r.AggregateID, Version: r.Version, EventIds: r.EventIDs}, nil
}

// AddAddress adds a postal address.
func (s *CustomerServer) AddAddress(ctx context.Context, req *ordersv1.AddAddressRequest) (*ordersv1.AddAddressResponse, error) {
	r, err := s.run(ctx, ordersv1.CustomerCommandService_AddAddress_FullMethodName, ids.Canonical(req.GetCustomerId()), req, customer.AddAddress{
		Address: codec.AddressFromProto(req.GetAddress()),
	})
	if err != nil {
		return nil, err
	}
	return &ordersv1.AddAddressResponse{AggregateId: r.AggregateID, Version: r.Version, EventIds: r.EventIDs}, nil
}

// UpdateAddress replaces an address.
func (s *CustomerServer) UpdateAddress(ctx context.Context, req *ordersv1.UpdateAddressRequest) (*ordersv1.UpdateAddressResponse, error) {
	r, err := s.run(ctx, ordersv1.CustomerCommandService_UpdateAddress_FullMethodName, ids.Canonical(req.GetCustomerId()), req, customer.UpdateAddress{
		Address: codec.AddressFromProto(req.GetAddress()),
	})
	if err != nil {
		return nil, err
	}
	return &ordersv1.UpdateAddressResponse{AggregateId: r.AggregateID, Version: r.Version, EventIds: r.EventIDs}, nil
}

// RemoveAddress removes an address.
func (s *CustomerServer) RemoveAddress(ctx context.Context, req *ordersv1.RemoveAddressRequest) (*ordersv1.RemoveAddressResponse, error) {
	r, err := s.run(ctx, ordersv1.CustomerCommandService_RemoveAddress_FullMethodName, ids.Canonical(req.GetCustomerId()), req, customer.RemoveAddress{
		AddressID: req.GetAddressId(),
	})
	if err != nil {
		return nil, err
	}
	return &ordersv1.RemoveAddressResponse{AggregateId: r.AggregateID, Version: r.Version, EventIds: r.EventIDs}, nil
}

// AddPaymentMethod adds a payment method.
func (s *CustomerServer) AddPaymentMethod(ctx context.Context, req *ordersv1.AddPaymentMethodRequest) (*ordersv1.AddPaymentMethodResponse, error) {
	r, err := s.run(ctx, ordersv1.CustomerCommandService_AddPaymentMethod_FullMethodName, ids.Canonical(req.GetCustomerId()), req, customer.AddPaymentMethod{
		PaymentMethod: codec.PaymentMethodFromProto(req.GetPaymentMethod()),
	})
	if err != nil {
		return nil, err
	}
	return &ordersv1.AddPaymentMethodResponse{AggregateId: r.AggregateID, Version: r.Version, EventIds: r.EventIDs}, nil
}

// RemovePaymentMethod removes a payment method.
func (s *CustomerServer) RemovePaymentMethod(ctx context.Context, req *ordersv1.RemovePaymentMethodRequest) (*ordersv1.RemovePaymentMethodResponse, error) {
	r, err := s.run(ctx, ordersv1.CustomerCommandService_RemovePaymentMethod_FullMethodName, ids.Canonical(req.GetCustomerId()), req, customer.RemovePaymentMethod{
		PaymentMethodID: req.GetPaymentMethodId(),
	})
	if err != nil {
		return nil, err
	}
	return &ordersv1.RemovePaymentMethodResponse{AggregateId: r.AggregateID, Version: r.Version, EventIds: r.EventIDs}, nil
}

// UpgradeTier moves the customer to a higher tier.
func (s *CustomerServer) UpgradeTier(ctx context.Context, req *ordersv1.UpgradeTierRequest) (*ordersv1.UpgradeTierResponse, error) {
	r, err := s.run(ctx, ordersv1.CustomerCommandService_UpgradeTier_FullMethodName, ids.Canonical(req.GetCustomerId()), req, customer.UpgradeTier{
		// Not codec.TierFromProto: an unknown number must reach the domain, which names the field.
		Tier: customer.Tier(req.GetTier()),
	})
	if err != nil {
		return nil, err
	}
	return &ordersv1.UpgradeTierResponse{AggregateId: r.AggregateID, Version: r.Version, EventIds: r.EventIDs}, nil
}

// SuspendCustomer blocks an ACTIVE customer.
func (s *CustomerServer) SuspendCustomer(ctx context.Context, req *ordersv1.SuspendCustomerRequest) (*ordersv1.SuspendCustomerResponse, error) {
	r, err := s.run(ctx, ordersv1.CustomerCommandService_SuspendCustomer_FullMethodName, ids.Canonical(req.GetCustomerId()), req, customer.Suspend{
		Reason: req.GetReason(),
	})
	if err != nil {
		return nil, err
	}
	return &ordersv1.SuspendCustomerResponse{AggregateId: r.AggregateID, Version: r.Version, EventIds: r.EventIDs}, nil
}

// ReactivateCustomer makes a SUSPENDED customer ACTIVE again.
func (s *CustomerServer) ReactivateCustomer(ctx context.Context, req *ordersv1.ReactivateCustomerRequest) (*ordersv1.ReactivateCustomerResponse, error) {
	r, err := s.run(ctx, ordersv1.CustomerCommandService_ReactivateCustomer_FullMethodName, ids.Canonical(req.GetCustomerId()), req, customer.Reactivate{})
	if err != nil {
		return nil, err
	}
	return &ordersv1.ReactivateCustomerResponse{AggregateId: r.AggregateID, Version: r.Version, EventIds: r.EventIDs}, nil
}

// DeactivateCustomer closes the account for good.
func (s *CustomerServer) DeactivateCustomer(ctx context.Context, req *ordersv1.DeactivateCustomerRequest) (*ordersv1.DeactivateCustomerResponse, error) {
	r, err := s.run(ctx, ordersv1.CustomerCommandService_DeactivateCustomer_FullMethodName, ids.Canonical(req.GetCustomerId()), req, customer.Deactivate{
		Reason: req.GetReason(),
	})
	if err != nil {
		return nil, err
	}
	return &ordersv1.DeactivateCustomerResponse{AggregateId: r.AggregateID, Version: r.Version, EventIds: r.EventIDs}, nil
}

// EraseCustomer erases the customer's personal data: it deletes the customer's data key first
// (from then on no process can decrypt the personal fields of its events, and no new key is
// made: a concurrent command that would write personal data fails with FAILED_PRECONDITION),
// then appends CustomerErased, on which the projector scrubs the read models. A retry after a
// failure between the two steps deletes the (already deleted) key again and appends the event.
// A customer whose key was lost (codec.ErrKeyLost: every other command on it fails) can be
// erased: the erasure then records that the key is erased.
func (s *CustomerServer) EraseCustomer(ctx context.Context, req *ordersv1.EraseCustomerRequest) (*ordersv1.EraseCustomerResponse, error) {
	id := ids.Canonical(req.GetCustomerId())
	// The key goes only for a request that can succeed: a valid one (else run reports what is
	// wrong), on an existing customer, at the expected version if one is given (else ABORTED).
	valid := ids.Valid(id) && (req.GetCommandId() == "" || ids.Valid(req.GetCommandId())) && req.GetExpectedVersion() >= 0
	if valid {
		eligible := false
		err := s.h.Read(ctx, id, func(c *customer.Customer) {
			eligible = c.Version() > 0 && (req.ExpectedVersion == nil || req.GetExpectedVersion() == c.Version())
		})
		switch {
		case errors.Is(err, codec.ErrKeyLost):
			// The customer exists (its events are sealed) and nobody can read its personal
			// data: the key was lost. Erasing marks it erased, so the customer loads again
			// (with erased fields) and the erasure finishes; the expected version is checked
			// by the command only.
			eligible = true
		case err != nil:
			return nil, err
		}
		if eligible {
			if err := s.keys.Erase(ctx, id); err != nil {
				return nil, err
			}
		}
	}
	r, err := s.run(ctx, ordersv1.CustomerCommandService_EraseCustomer_FullMethodName, id, req, customer.Erase{})
	if err != nil {
		return nil, err
	}
	return &ordersv1.EraseCustomerResponse{AggregateId: r.AggregateID, Version: r.Version, EventIds: r.EventIDs}, nil
}
