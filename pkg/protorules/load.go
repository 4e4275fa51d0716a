package protorules

import (
	"context"
	"fmt"

	"github.com/bufbuild/protocompile"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Field is one field of a request (or of a message inside it) with its rules.
type Field struct {
	// Path is the field's path as the server reports it, e.g. items[0].quantity.
	Path string
	// Rules are what its comment's Rules line says.
	Rules Rules
	steps []protoreflect.FieldDescriptor // from the request down to the field (compiled descriptors)
	fd    protoreflect.FieldDescriptor
}

// Method is one RPC with the rules of every field of its request.
type Method struct {
	// FullName is the gRPC method name, e.g. /orders.v1.OrderCommandService/CreateOrder.
	FullName string
	// Desc describes the method (compiled from the sources, with comments).
	Desc protoreflect.MethodDescriptor
	// Fields are the ruled fields of the request, parents before their children.
	Fields []Field
}

// Load compiles files (paths relative to root, e.g. "orders/v1/order_command.proto") with
// their comments and returns every RPC of their services. Each problem found in the comments (a
// field without a Rules line, except bool fields and oneof members of a oneof whose own comment
// carries the rule, or an unknown clause) is returned in problems.
func Load(root string, files ...string) (methods []Method, problems []error, err error) {
	c := protocompile.Compiler{
		Resolver:       protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: []string{root}}),
		SourceInfoMode: protocompile.SourceInfoStandard,
	}
	compiled, err := c.Compile(context.Background(), files...)
	if err != nil {
		return nil, nil, fmt.Errorf("compile %v: %w", files, err)
	}
	for _, f := range compiled {
		for i := 0; i < f.Services().Len(); i++ {
			svc := f.Services().Get(i)
			for j := 0; j < svc.Methods().Len(); j++ {
				md := svc.Methods().Get(j)
				m := Method{FullName: "/" + string(svc.FullName()) + "/" + string(md.Name()), Desc: md}
				problems = append(problems, collect(md.Input(), "", nil, &m.Fields)...)
				methods = append(methods, m)
			}
		}
	}
	return methods, problems, nil
}

// collect appends the ruled fields of msg (recursively) to out and returns the problems.
func collect(msg protoreflect.MessageDescriptor, prefix string, steps []protoreflect.FieldDescriptor, out *[]Field) []error {
	var problems []error
	for i := 0; i < msg.Fields().Len(); i++ {
		fd := msg.Fields().Get(i)
		path := prefix + string(fd.Name())
		loc := fd.ParentFile().SourceLocations().ByDescriptor(fd)
		r, ok, err := Parse(loc.LeadingComments)
		switch {
		case err != nil:
			problems = append(problems, fmt.Errorf("%s (%s): %w", path, msg.FullName(), err))
			continue
		case !ok && fd.Kind() != protoreflect.BoolKind:
			problems = append(problems, fmt.Errorf("%s (%s) has no Rules line in its comment: state what the server accepts", path, msg.FullName()))
			continue
		case !ok:
			continue
		}
		here := append(append([]protoreflect.FieldDescriptor(nil), steps...), fd)
		*out = append(*out, Field{Path: path, Rules: r, steps: here, fd: fd})
		if fd.Kind() == protoreflect.MessageKind && !r.Timestamp {
			sub := path + "."
			if fd.IsList() {
				sub = path + "[0]."
			}
			problems = append(problems, collect(fd.Message(), sub, here, out)...)
		}
	}
	return problems
}

// own returns the field of m's (generated) descriptor named like fd: descriptors compiled
// from the sources are distinct objects from the generated ones.
func own(m protoreflect.Message, fd protoreflect.FieldDescriptor) protoreflect.FieldDescriptor {
	return m.Descriptor().Fields().ByName(fd.Name())
}

// Target returns the message holding the field inside the request m, creating the messages
// (and the first list element) on the way.
func (f Field) Target(m protoreflect.Message) protoreflect.Message {
	for _, s := range f.steps[:len(f.steps)-1] {
		step := own(m, s)
		if step.IsList() {
			l := m.Mutable(step).List()
			if l.Len() == 0 {
				l.Append(l.NewElement())
			}
			m = l.Get(0).Message()
			continue
		}
		m = m.Mutable(step).Message()
	}
	return m
}

// Set stores v in the field of the request m (an invalid v clears it).
func (f Field) Set(m protoreflect.Message, v protoreflect.Value) {
	t := f.Target(m)
	if !v.IsValid() {
		t.Clear(own(t, f.fd))
		return
	}
	t.Set(own(t, f.fd), v)
}

// sibling returns the value of another field of the message holding f.
func (f Field) sibling(m protoreflect.Message, name protoreflect.Name) protoreflect.Value {
	t := f.Target(m)
	return t.Get(t.Descriptor().Fields().ByName(name))
}

// setSibling sets another field of the message holding f.
func (f Field) setSibling(m protoreflect.Message, name protoreflect.Name, v protoreflect.Value) {
	t := f.Target(m)
	t.Set(t.Descriptor().Fields().ByName(name), v)
}

// Violates reports whether one of the violated field paths is path or below it.
func Violates(violated []string, path string) bool {
	for _, v := range violated {
		if v == path || len(v) > len(path) && v[:len(path)] == path && (v[len(path)] == '.' || v[len(path)] == '[') {
			return true
		}
	}
	return false
}

// FieldViolations returns the field paths of the google.rpc.BadRequest detail of err and
// whether err is an INVALID_ARGUMENT status at all.
func FieldViolations(err error) (paths []string, invalid bool) {
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		return nil, false
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				paths = append(paths, v.GetField())
			}
		}
	}
	return paths, true
}
