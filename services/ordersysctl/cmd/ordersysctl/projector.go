package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

func projectorStatus(ctx context.Context, o options, args []string) error {
	if len(args) != 0 {
		return fmt.Errorf("%w: projector status takes no argument", errUsage)
	}
	conn, err := o.dial(o.projector)
	if err != nil {
		return err
	}
	defer conn.Close()
	st, err := ordersv1.NewProjectorAdminServiceClient(conn).GetProjectorStatus(ctx, &ordersv1.GetProjectorStatusRequest{})
	if err != nil {
		return err
	}
	return o.print(st, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "PROJECTION\tACTIVE\tBUILDING\tPREVIOUS\tLATEST\tSWITCHED")
		for _, p := range st.GetProjections() {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%d\t%s\n", p.GetProjection(), p.GetActive(), versionOrDash(p.GetBuilding()),
				versionOrDash(p.GetPrevious()), p.GetLatest(), when(p.GetSwitchedAt()))
		}
	})
}

func projectorAbortRebuild(ctx context.Context, o options, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: projector abort-rebuild PROJECTION (orders or customers)", errUsage)
	}
	conn, err := o.dial(o.projector)
	if err != nil {
		return err
	}
	defer conn.Close()
	res, err := ordersv1.NewProjectorAdminServiceClient(conn).AbortRebuild(ctx, &ordersv1.AbortRebuildRequest{Projection: args[0]})
	if err != nil {
		return err
	}
	return o.print(res, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "aborted the rebuild of %s version %d (its tables stay until dropped)\n", args[0], res.GetAbortedVersion())
	})
}

func versionOrDash(v int32) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprint(v)
}
