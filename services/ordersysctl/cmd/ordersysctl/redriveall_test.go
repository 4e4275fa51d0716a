package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// dlqRelay holds 1,203 dead letters (every tenth re-driven before) in pages of at most the
// request's size, records the filters it was asked for and the re-drives, and fails the
// re-drive of "dl-7".
type dlqRelay struct {
	ordersv1.UnimplementedRelayAdminServiceServer
	mu       sync.Mutex
	filters  []string
	redriven []string
}

func (r *dlqRelay) ListDeadLetters(_ context.Context, req *ordersv1.ListDeadLettersRequest) (*ordersv1.ListDeadLettersResponse, error) {
	r.mu.Lock()
	r.filters = append(r.filters, req.GetTopic()+"|"+req.GetReasonContains())
	r.mu.Unlock()
	from, _ := strconv.Atoi(req.GetPageToken())
	res := &ordersv1.ListDeadLettersResponse{}
	for i := from; i < 1203 && len(res.DeadLetters) < int(req.GetPageSize()); i++ {
		dl := &ordersv1.DeadLetter{Id: fmt.Sprintf("dl-%d", i), Topic: "order-events", AggregateId: "a", Sequence: int64(i)}
		if i%10 == 0 {
			dl.RedrivenAt = timestamppb.Now()
		}
		res.DeadLetters = append(res.DeadLetters, dl)
		if next := i + 1; next < 1203 {
			res.NextPageToken = strconv.Itoa(next)
		} else {
			res.NextPageToken = ""
		}
	}
	return res, nil
}

func (r *dlqRelay) RedriveDeadLetter(_ context.Context, req *ordersv1.RedriveDeadLetterRequest) (*ordersv1.RedriveDeadLetterResponse, error) {
	if req.GetId() == "dl-7" {
		return nil, status.Error(codes.Unavailable, "broker down")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.redriven = append(r.redriven, req.GetId()+"@"+req.GetTopic())
	return &ordersv1.RedriveDeadLetterResponse{}, nil
}

// TestRedriveAllWalksEveryPage: redrive-all passes the filters, walks every page, re-drives each
// dead letter not re-driven before (every one with -again) on its own topic, reports progress
// and a failed one on stderr (both in the output here), and exits 1 when any failed.
func TestRedriveAllWalksEveryPage(t *testing.T) {
	for _, again := range []bool{false, true} {
		relay := &dlqRelay{}
		ctl := fakeService(t, "-relay", func(srv *grpc.Server) { ordersv1.RegisterRelayAdminServiceServer(srv, relay) })
		args := []string{"dlq", "redrive-all", "-topic", "order-events", "-reason", "poison"}
		if again {
			args = append(args, "-again")
		}
		out, code := ctl(args...)

		want := 1203 - 1 // dl-7 fails
		if !again {
			want -= 121 // dl-0, dl-10, …, dl-1200 were re-driven before
		}
		if code != exitFailed || len(relay.redriven) != want {
			t.Fatalf("again=%v: exit %d, %d re-driven; want exit 1 (one failed) and %d\n%s",
				again, code, len(relay.redriven), want, out)
		}
		if slices.Contains(relay.redriven, "dl-10@order-events") != again || !slices.Contains(relay.redriven, "dl-1202@order-events") {
			t.Errorf("again=%v: dl-10 re-driven: %v, dl-1202: %v", again, slices.Contains(relay.redriven, "dl-10@order-events"),
				slices.Contains(relay.redriven, "dl-1202@order-events"))
		}
		if len(relay.filters) != 3 || slices.ContainsFunc(relay.filters, func(f string) bool { return f != "order-events|poison" }) {
			t.Errorf("again=%v: list calls with filters %v, want 3 pages of order-events|poison", again, relay.filters)
		}
		if !strings.Contains(out, "re-drive dl-7") || !strings.Contains(out, "1 of") {
			t.Errorf("again=%v: stderr does not name the failed dead letter and the count:\n%s", again, out)
		}
		if !strings.Contains(out, "\n199/") || !strings.Contains(out, "done") {
			t.Errorf("again=%v: no progress lines (one per 100) and final line:\n%s", again, out)
		}
	}
}
