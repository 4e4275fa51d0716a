package grpcx_test

import (
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/grpcx"
)

// TestEveryServiceHasARole: a service of the proto contract without a role in ServiceRoles is
// refused to every token (PERMISSION_DENIED), so a new service must be given one.
func TestEveryServiceHasARole(t *testing.T) {
	_ = ordersv1.File_orders_v1_projector_admin_proto // link the generated descriptors
	n := 0
	protoregistry.GlobalFiles.RangeFilesByPackage("orders.v1", func(f protoreflect.FileDescriptor) bool {
		for i := 0; i < f.Services().Len(); i++ {
			name := string(f.Services().Get(i).FullName())
			n++
			if _, ok := grpcx.ServiceRoles[name]; !ok {
				t.Errorf("%s (%s) has no role in grpcx.ServiceRoles", name, f.Path())
			}
		}
		return true
	})
	if n < 6 {
		t.Fatalf("found %d orders.v1 services, want at least the 6 of the contract", n)
	}
}
