package es

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors shared by the domain, the stores and the transport edge. The gRPC edge maps
// them to status codes once: ErrInvalidArgument → InvalidArgument, ErrRuleViolation →
// FailedPrecondition, ErrConcurrencyConflict → Aborted, ErrNotFound → NotFound,
// ErrAlreadyExists → AlreadyExists, ErrUnavailable → Unavailable.
var (
	// ErrInvalidArgument marks input that is malformed whatever the state (see ValidationError).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrRuleViolation marks a command the aggregate's current state forbids (see RuleError).
	ErrRuleViolation = errors.New("business rule violated")
	// ErrConcurrencyConflict marks an append whose expected version was not the current one.
	ErrConcurrencyConflict = errors.New("concurrency conflict")
	// ErrNotFound marks an aggregate (or read model row) that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists marks a creation command on an id that is taken.
	ErrAlreadyExists = errors.New("already exists")
	// ErrUnavailable marks a dependency (store, broker) that cannot be reached.
	ErrUnavailable = errors.New("unavailable")
	// ErrSequenceGap marks an event stream that is not dense.
	ErrSequenceGap = errors.New("sequence gap")
	// ErrUnknownEventType marks an event type (or schema version) the registry does not know.
	ErrUnknownEventType = errors.New("unknown event type")
	// ErrCommandIDReused marks a command id already used for a different command.
	ErrCommandIDReused = errors.New("command id reused for a different command")
)

// FieldViolation names one bad input field and why it is bad.
type FieldViolation struct {
	// Field is the path of the field, e.g. "items[2].quantity".
	Field string
	// Reason says what is wrong, e.g. "must be greater than 0". It never quotes a personal
	// value (docs/privacy.md): it is sent in the status, which tracing records.
	Reason string
}

// MaxReportedViolations bounds the violations one ValidationError lists, however large the
// request: an answer never grows with a hostile input.
const MaxReportedViolations = 20

// ValidationError lists the bad fields of one command (the first MaxReportedViolations). It
// matches ErrInvalidArgument.
type ValidationError struct {
	// Violations holds one entry per bad field, in field order.
	Violations []FieldViolation
	// Omitted counts the violations found beyond MaxReportedViolations.
	Omitted int
}

// Error lists the violations.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Field + ": " + v.Reason
	}
	if e.Omitted > 0 {
		parts = append(parts, fmt.Sprintf("and %d more", e.Omitted))
	}
	return "invalid argument: " + strings.Join(parts, "; ")
}

// Is reports whether target is ErrInvalidArgument.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidArgument }

// Violations collects field violations; its Err is nil when none were added.
type Violations []FieldViolation

// Add records that field is bad for reason.
func (v *Violations) Add(field, reason string) { *v = append(*v, FieldViolation{field, reason}) }

// Addf records that field is bad, formatting the reason.
func (v *Violations) Addf(field, format string, args ...any) {
	v.Add(field, fmt.Sprintf(format, args...))
}

// Merge adds the violations of err (a *ValidationError) under the given field prefix; any other
// non-nil error is recorded against the prefix itself.
func (v *Violations) Merge(prefix string, err error) {
	if err == nil {
		return
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		for _, f := range ve.Violations {
			name := f.Field
			switch {
			case prefix == "":
			case name == "":
				name = prefix
			default:
				name = prefix + "." + name
			}
			v.Add(name, f.Reason)
		}
		return
	}
	v.Add(prefix, err.Error())
}

// Err returns a *ValidationError holding the violations (the first MaxReportedViolations, the
// rest counted), or nil when there are none.
func (v Violations) Err() error {
	if len(v) == 0 {
		return nil
	}
	n := min(len(v), MaxReportedViolations)
	return &ValidationError{Violations: append([]FieldViolation(nil), v[:n]...), Omitted: len(v) - n}
}

// Invalid returns a ValidationError for one field.
func Invalid(field, reason string) error {
	return &ValidationError{Violations: []FieldViolation{{Field: field, Reason: reason}}}
}

// RuleError says why the aggregate's current state forbids a command. It matches ErrRuleViolation.
type RuleError struct {
	// Rule is a short stable identifier, e.g. "order.ship.requires_confirmed".
	Rule string
	// Reason is the human explanation, e.g. "order is CREATED; only a CONFIRMED order can ship".
	// It names rules, fields, states and ids, never a personal value (docs/privacy.md): it is
	// stored in clear with the command's record and sent in the status.
	Reason string
	// Subject names what the rule is about when it is not the command's own aggregate, e.g.
	// the customer id of an order refused because its customer is suspended (may be empty).
	Subject string
}

// Error returns the reason.
func (e *RuleError) Error() string { return e.Reason }

// Is reports whether target is ErrRuleViolation.
func (e *RuleError) Is(target error) bool { return target == ErrRuleViolation }

// Rule returns a RuleError.
func Rule(rule, format string, args ...any) error {
	return &RuleError{Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

// ConflictError reports a lost optimistic-concurrency race. It matches ErrConcurrencyConflict.
type ConflictError struct {
	// AggregateID is the aggregate written to.
	AggregateID string
	// Expected is the version the writer expected.
	Expected int64
	// Actual is the version found (-1 when unknown).
	Actual int64
	// CommandRecorded reports that the append's command id was found recorded (a first
	// outcome or a rejection, by another writer): the caller reads it rather than deciding again.
	CommandRecorded bool
}

// Error describes the conflict.
func (e *ConflictError) Error() string {
	if e.CommandRecorded {
		return fmt.Sprintf("concurrency conflict on %s: the command id is already recorded (expected version %d, actual %d)",
			e.AggregateID, e.Expected, e.Actual)
	}
	return fmt.Sprintf("concurrency conflict on %s: expected version %d, actual %d", e.AggregateID, e.Expected, e.Actual)
}

// Is reports whether target is ErrConcurrencyConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConcurrencyConflict }
