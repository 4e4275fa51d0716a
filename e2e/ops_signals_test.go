package e2e_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// reBuildInfo reads the ordersys_build_info sample of a /metrics page.
var reBuildInfo = regexp.MustCompile(`(?m)^ordersys_build_info\{([^}]*)\} 1$`)

// reLabel reads one label="value" of a sample.
var reLabel = regexp.MustCompile(`(\w+)="([^"]*)"`)

// buildInfo returns the labels of the ordersys_build_info sample of name's /metrics.
func (s *system) buildInfo(name string) (map[string]string, error) {
	page, err := s.metrics(name)
	if err != nil {
		return nil, err
	}
	m := reBuildInfo.FindAllStringSubmatch(page, -1)
	if len(m) != 1 {
		return nil, fmt.Errorf("%s /metrics: %d ordersys_build_info samples equal to 1, want 1", name, len(m))
	}
	labels := map[string]string{}
	for _, kv := range reLabel.FindAllStringSubmatch(m[0][1], -1) {
		labels[kv[1]] = kv[2]
	}
	return labels, nil
}

// TestBuildInfoOnEveryService: each running service exports ordersys_build_info = 1 on its
// /metrics, labelled with its own name and the version, revision and Go version its binary
// reports for --version (the dashboard's "Builds running" panel counts these).
func TestBuildInfoOnEveryService(t *testing.T) {
	s := getSystem(t)
	for _, name := range serviceNames {
		labels, err := s.buildInfo(name)
		if err != nil {
			t.Error(err)
			continue
		}
		out, err := exec.Command(filepath.Join(s.binDir, name), "--version").Output()
		if err != nil {
			t.Fatalf("%s --version: %v", name, err)
		}
		want := fmt.Sprintf("%s %s (revision %s, %s)", name, labels["version"], labels["revision"], labels["goversion"])
		if labels["service"] != name || labels["version"] == "" || labels["revision"] == "" || !strings.HasPrefix(labels["goversion"], "go") ||
			strings.TrimSpace(string(out)) != want {
			t.Errorf("%s: ordersys_build_info%v; --version says %q, want %q", name, labels, strings.TrimSpace(string(out)), want)
		}
	}
}

// TestReflectionListsTheServices: server reflection on each running service lists its API
// and, on the relay and the projector, their admin services (docs/operations.md: grpcurl finds
// them), and describes each admin service.
func TestReflectionListsTheServices(t *testing.T) {
	s := getSystem(t)
	want := map[string][]string{
		"command":   {"orders.v1.OrderCommandService", "orders.v1.CustomerCommandService"},
		"query":     {"orders.v1.OrderQueryService", "orders.v1.CustomerQueryService"},
		"cdc-relay": {"orders.v1.RelayAdminService"},
		"projector": {"orders.v1.ProjectorAdminService"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, name := range serviceNames {
		conn, err := s.dial(s.grpcAddr[name])
		if err != nil {
			t.Fatal(err)
		}
		stream, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
		if err != nil {
			t.Fatalf("%s reflection: %v", name, err)
		}
		ask := func(req *rpb.ServerReflectionRequest) *rpb.ServerReflectionResponse {
			t.Helper()
			if err := stream.Send(req); err != nil {
				t.Fatalf("%s reflection: send: %v", name, err)
			}
			res, err := stream.Recv()
			if err != nil {
				t.Fatalf("%s reflection: %v", name, err)
			}
			return res
		}
		var listed []string
		for _, svc := range ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}).GetListServicesResponse().GetService() {
			listed = append(listed, svc.GetName())
		}
		for _, w := range append([]string{"grpc.health.v1.Health"}, want[name]...) {
			if !slices.Contains(listed, w) {
				t.Errorf("%s: reflection lists %v, not %s", name, listed, w)
			}
		}
		for _, w := range want[name] {
			res := ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: w}})
			if len(res.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
				t.Errorf("%s: reflection does not describe %s: %v", name, w, res.GetErrorResponse())
			}
		}
		_ = stream.CloseSend()
	}
}

// TestSpansCarryServiceVersion: the spans every service exports carry the resource attribute
// service.version (a Jaeger process tag), equal to the version of the service's
// ordersys_build_info: one trace through command, cdc-relay, projector and query shows it for
// each.
func TestSpansCarryServiceVersion(t *testing.T) {
	s := getSystem(t)
	if s.jaeger == nil {
		if tracingRequired() {
			t.Fatalf("CI=%s requires the tracing check: %s", os.Getenv("CI"), s.jaegerSkip)
		}
		t.Skip(s.jaegerSkip)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	customer, order := ids.New(), ids.New()
	if _, err := s.customers.RegisterCustomer(ctx, &ordersv1.RegisterCustomerRequest{CustomerId: customer,
		Email: "version-" + customer[:8] + "@example.com", FirstName: "Ver", LastName: "Sion"}); err != nil {
		t.Fatal(err)
	}
	traceID := randomHex(16)
	traced := metadata.AppendToOutgoingContext(ctx, mdTraceParent, fmt.Sprintf("00-%s-%s-01", traceID, randomHex(8)))
	if _, err := s.orders.CreateOrder(traced, &ordersv1.CreateOrderRequest{OrderId: order, CustomerId: customer, Items: items(2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.query.GetOrder(traced, &ordersv1.GetOrderRequest{OrderId: order, MinVersion: ptr(int64(1))}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, name := range serviceNames {
		labels, err := s.buildInfo(name)
		if err != nil {
			t.Fatal(err)
		}
		if want[name] = labels["version"]; want[name] == "" {
			t.Fatalf("%s: ordersys_build_info%v has no version", name, labels)
		}
	}
	err := eventually(convergeTimeout, time.Second, func() error {
		traces, err := s.jaegerGet("/api/traces/"+traceID, nil)
		if err != nil {
			return err
		}
		if len(traces) == 0 {
			return fmt.Errorf("%w: trace %s not in Jaeger yet", errNotYet, traceID)
		}
		tr := traces[0]
		for _, name := range serviceNames {
			if len(tr.services()[name]) == 0 {
				return fmt.Errorf("%w: trace %s has no span of %s yet (spans of %v)", errNotYet, traceID, name, keysOf(tr.services()))
			}
			if got := tr.processTags(name)["service.version"]; got != want[name] {
				return fmt.Errorf("spans of %s carry service.version %q, want %q (its ordersys_build_info); process tags %v",
					name, got, want[name], tr.processTags(name))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
