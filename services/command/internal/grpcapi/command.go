package grpcapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/ordersys/ordersys/pkg/domain/check"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/services/command/internal/app"
)

// Field names every command request has (see proto/orders/v1/*_command.proto).
const (
	fieldCommandID       = "command_id"
	fieldExpectedVersion = "expected_version"
)

// commandRequest is what every generated command request offers.
type commandRequest interface {
	proto.Message
	GetCommandId() string
}

// validator is a domain command.
type validator interface{ Validate() error }

// call describes one RPC for execute.
type call[C validator] struct {
	method  string            // full method name, e.g. /orders.v1.OrderCommandService/CreateOrder
	idField string            // request field holding the aggregate id, e.g. "order_id"
	id      string            // its value
	req     commandRequest    // the request, for the fingerprint and the common fields
	cmd     C                 // the domain command
	renames map[string]string // domain field path (or prefix) → request field path
}

// execute validates the parts of the request the domain does not see (aggregate id of
// non-creating commands, command id, expected version) together with the domain command's own
// input, computes the fingerprint, runs the command and renames field paths in a validation
// error to the request's. Errors stay domain errors; grpcx maps them to status codes once.
func execute[A app.Decider[C], C validator](ctx context.Context, h *app.Handler[A, C], c call[C]) (app.Result, error) {
	var v es.Violations
	v.Merge("", c.cmd.Validate())
	reported := func(field string) bool {
		for _, f := range v {
			if f.Field == field {
				return true
			}
		}
		return false
	}
	if !reported(c.idField) {
		check.UUID(&v, c.idField, c.id)
	}
	// The command id is a key, compared exactly as sent (as before ids were canonical
	// elsewhere): a client retrying with the id it used before an upgrade finds its outcome.
	cmdID := c.req.GetCommandId()
	if cmdID != "" {
		check.UUID(&v, fieldCommandID, cmdID)
	}
	expected, hasExpected := expectedVersion(c.req)
	if hasExpected && expected < 0 {
		v.Addf(fieldExpectedVersion, "must not be negative, got %d", expected)
	}
	if err := v.Err(); err != nil {
		return app.Result{}, rename(err, c.renames)
	}
	fp, err := Fingerprint(c.method, c.req)
	if err != nil {
		return app.Result{}, err
	}
	req := app.Request[C]{
		AggregateID: ids.Canonical(c.id),
		Command:     c.cmd,
		Name:        c.method[strings.LastIndexByte(c.method, '/')+1:],
		CommandID:   cmdID,
		Fingerprint: fp,
		Meta:        MetaFromContext(ctx),
	}
	if hasExpected {
		req.ExpectedVersion = &expected
	}
	res, err := h.Execute(ctx, req)
	if err != nil {
		return app.Result{}, rename(err, c.renames)
	}
	if res.EventIDs == nil {
		res.EventIDs = []string{}
	}
	return res, nil
}

// expectedVersion reads the optional expected_version field.
func expectedVersion(m proto.Message) (int64, bool) {
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName(fieldExpectedVersion)
	if fd == nil || !r.Has(fd) {
		return 0, false
	}
	return r.Get(fd).Int(), true
}

// Fingerprint identifies a command's content: the SHA-256 (hex) of the RPC's full method name
// and of the deterministic protobuf encoding of the request with command_id and
// expected_version cleared. Two requests with the same fingerprint ask for the same change.
func Fingerprint(fullMethod string, req proto.Message) (string, error) {
	m := proto.Clone(req).ProtoReflect()
	for _, name := range []protoreflect.Name{fieldCommandID, fieldExpectedVersion} {
		if fd := m.Descriptor().Fields().ByName(name); fd != nil {
			m.Clear(fd)
		}
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m.Interface())
	if err != nil {
		return "", fmt.Errorf("fingerprint %s: %w", fullMethod, err)
	}
	h := sha256.New()
	h.Write([]byte(fullMethod))
	h.Write([]byte{0})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// rename rewrites the field paths of a validation error from the domain's names to the
// request's: a path equal to a key, or starting with the key followed by "." or "[", gets the
// key replaced. Other errors are returned unchanged.
func rename(err error, renames map[string]string) error {
	var ve *es.ValidationError
	if len(renames) == 0 || !errors.As(err, &ve) {
		return err
	}
	out := make(es.Violations, 0, len(ve.Violations))
	for _, f := range ve.Violations {
		for from, to := range renames {
			if f.Field == from || strings.HasPrefix(f.Field, from+".") || strings.HasPrefix(f.Field, from+"[") {
				f.Field = to + f.Field[len(from):]
				break
			}
		}
		out = append(out, f)
	}
	return out.Err()
}
