package main

import (
	"context"
	"encoding/json"
	"regexp"
	"testing"

	"google.golang.org/grpc"

	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// statusProjector answers GetProjectorStatus with a fixed status: orders with a version being
// built, customers without.
type statusProjector struct {
	ordersv1.UnimplementedProjectorAdminServiceServer
}

func (statusProjector) GetProjectorStatus(context.Context, *ordersv1.GetProjectorStatusRequest) (*ordersv1.GetProjectorStatusResponse, error) {
	return &ordersv1.GetProjectorStatusResponse{Projections: []*ordersv1.ProjectionStatus{
		{Projection: "orders", Active: 1, Building: 2, Latest: 2,
			ActiveProgress:   &ordersv1.ProjectionProgress{Version: 1, Position: 120, Lag: 7, RatePerSecond: 3.5, LagSeconds: 42.34},
			BuildingProgress: &ordersv1.ProjectionProgress{Version: 2, Position: 30, Lag: 97, LagSeconds: 310}},
		{Projection: "customers", Active: 1, Latest: 1,
			ActiveProgress: &ordersv1.ProjectionProgress{Version: 1, Position: 40}},
	}}, nil
}

// TestProjectorStatusShowsLagAge: `projector status` shows the age of the oldest unprocessed
// message (lag_seconds) next to the message lag, for the active version and the one being
// built, in the table and in the JSON.
func TestProjectorStatusShowsLagAge(t *testing.T) {
	ctl := fakeService(t, "-projector", func(srv *grpc.Server) { ordersv1.RegisterProjectorAdminServiceServer(srv, statusProjector{}) })

	out, code := ctl("projector", "status")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^PROJECTION\s+ACTIVE\s+BUILDING\s+PREVIOUS\s+LATEST\s+SWITCHED\s+POSITION\s+LAG\s+LAG AGE\s+RATE\s+BUILD LAG$`),
		regexp.MustCompile(`(?m)^orders\s+1\s+2\s+-\s+2\s+-\s+120\s+7\s+42\.3s\s+3\.5/s\s+97 \(310\.0s\)$`),
		regexp.MustCompile(`(?m)^customers\s+1\s+-\s+-\s+1\s+-\s+40\s+0\s+0\.0s\s+0\.0/s\s+-$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("the table has no line matching %s:\n%s", want, out)
		}
	}

	out, code = ctl("-o", "json", "projector", "status")
	var st struct {
		Projections []struct {
			Projection       string                       `json:"projection"`
			ActiveProgress   struct{ LagSeconds float64 } `json:"activeProgress"`
			BuildingProgress struct{ LagSeconds float64 } `json:"buildingProgress"`
		} `json:"projections"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &st) != nil || len(st.Projections) != 2 {
		t.Fatalf("-o json: exit %d\n%s", code, out)
	}
	if p := st.Projections[0]; p.ActiveProgress.LagSeconds != 42.34 || p.BuildingProgress.LagSeconds != 310 {
		t.Errorf("-o json: orders lagSeconds active %v, building %v; want 42.34 and 310\n%s", p.ActiveProgress.LagSeconds, p.BuildingProgress.LagSeconds, out)
	}
}
