package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

func projectorStatus(ctx context.Context, o options, args []string) error {
	if err := o.parseCmd(cmdFlags("projector status"), args, 0, 0); err != nil {
		return err
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
		fmt.Fprintln(w, "PROJECTION\tACTIVE\tBUILDING\tPREVIOUS\tLATEST\tSWITCHED\tPOSITION\tLAG\tLAG AGE\tRATE\tBUILD LAG")
		for _, p := range st.GetProjections() {
			a, b := p.GetActiveProgress(), p.GetBuildingProgress()
			buildLag := "-"
			if b != nil {
				buildLag = fmt.Sprintf("%d (%s)", b.GetLag(), lagAge(b.GetLagSeconds()))
			}
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%d\t%s\t%d\t%d\t%s\t%.1f/s\t%s\n", p.GetProjection(), p.GetActive(), versionOrDash(p.GetBuilding()),
				versionOrDash(p.GetPrevious()), p.GetLatest(), when(p.GetSwitchedAt()), a.GetPosition(), a.GetLag(), lagAge(a.GetLagSeconds()),
				a.GetRatePerSecond(), buildLag)
		}
	})
}

func projectorAbortRebuild(ctx context.Context, o options, args []string) error {
	fs := cmdFlags("projector abort-rebuild")
	if err := o.parseCmd(fs, args, 1, 1); err != nil {
		return err
	}
	args = fs.Args()
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

// lagAge renders the age of the oldest unprocessed message (ProjectionProgress.lag_seconds).
func lagAge(seconds float64) string { return fmt.Sprintf("%.1fs", seconds) }

func versionOrDash(v int32) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprint(v)
}

// projectorRebuild starts a rebuild through the projector and prints its progress until readers
// were switched. The rebuild runs in the projector: stopping this command stops watching only
// (projector watch-rebuild follows it again, projector abort-rebuild gives it up).
func projectorRebuild(ctx context.Context, o options, args []string) error {
	fs := cmdFlags("projector rebuild")
	source := fs.String("source", "store", "where the history is read from: store (the event store), or topics (only as far back as their retention)")
	if err := o.parseCmd(fs, args, 1, 1); err != nil {
		return err
	}
	var src ordersv1.RebuildSource
	switch *source {
	case "topics":
		src = ordersv1.RebuildSource_REBUILD_SOURCE_TOPICS
	case "store", "event-store":
		src = ordersv1.RebuildSource_REBUILD_SOURCE_EVENT_STORE
	default:
		return fmt.Errorf("%w: -source %q: want topics or store", errUsage, *source)
	}
	conn, err := o.dial(o.projector)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A rebuild outlives the default call deadline.
	stream, err := ordersv1.NewProjectorAdminServiceClient(conn).StartRebuild(context.WithoutCancel(ctx),
		&ordersv1.StartRebuildRequest{Projection: fs.Arg(0), Source: src})
	if err != nil {
		return err
	}
	return printRebuild(o, stream.Recv)
}

// projectorWatchRebuild follows the rebuild a projector runs.
func projectorWatchRebuild(ctx context.Context, o options, args []string) error {
	fs := cmdFlags("projector watch-rebuild")
	if err := o.parseCmd(fs, args, 1, 1); err != nil {
		return err
	}
	args = fs.Args()
	conn, err := o.dial(o.projector)
	if err != nil {
		return err
	}
	defer conn.Close()
	stream, err := ordersv1.NewProjectorAdminServiceClient(conn).WatchRebuild(context.WithoutCancel(ctx),
		&ordersv1.WatchRebuildRequest{Projection: args[0]})
	if err != nil {
		return err
	}
	return printRebuild(o, stream.Recv)
}

// printRebuild prints each progress report of a rebuild stream (one line each, or protobuf JSON
// with -o json) until it ends.
func printRebuild[M interface {
	GetProgress() *ordersv1.RebuildProgress
}](o options, recv func() (M, error)) error {
	view := newProgressView(o, "rebuild")
	for {
		m, err := recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p := m.GetProgress()
		if o.output == "json" {
			if err := o.print(p, nil); err != nil {
				return err
			}
			continue
		}
		fraction := -1.0
		if p.GetPhase() == ordersv1.RebuildPhase_REBUILD_PHASE_WALKING {
			fraction = p.GetFraction()
		}
		if p.GetPhase() == ordersv1.RebuildPhase_REBUILD_PHASE_SWITCHED {
			view.finish(rebuildLine(p))
			continue
		}
		view.update(fraction, rebuildLine(p))
	}
}

// rebuildLine renders one progress report.
func rebuildLine(p *ordersv1.RebuildProgress) string {
	head := fmt.Sprintf("%s v%d", p.GetProjection(), p.GetVersion())
	switch p.GetPhase() {
	case ordersv1.RebuildPhase_REBUILD_PHASE_WALKING:
		eta := "-"
		if p.GetEta() != nil {
			eta = p.GetEta().AsDuration().String()
		}
		return fmt.Sprintf("%s: event store %5.1f%%  %d aggregates  %d events  %d skipped  %.0f events/s  ETA %s", head,
			100*p.GetFraction(), p.GetAggregates(), p.GetEvents(), p.GetSkippedAggregates(), p.GetEventsPerSecond(), eta)
	case ordersv1.RebuildPhase_REBUILD_PHASE_SWITCHED:
		return head + ": caught up, readers switched to it"
	}
	return fmt.Sprintf("%s: catching up, %d messages to go", head, p.GetLag())
}

// projectorSwitchBack makes the previous version active again (refused once it is no longer
// written).
func projectorSwitchBack(ctx context.Context, o options, args []string) error {
	fs := cmdFlags("projector switch-back")
	if err := o.parseCmd(fs, args, 1, 1); err != nil {
		return err
	}
	args = fs.Args()
	conn, err := o.dial(o.projector)
	if err != nil {
		return err
	}
	defer conn.Close()
	res, err := ordersv1.NewProjectorAdminServiceClient(conn).SwitchBack(ctx, &ordersv1.SwitchBackRequest{Projection: args[0]})
	if err != nil {
		return err
	}
	return o.print(res, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "%s: version %d is active again (version %d is previous)\n", args[0], res.GetStatus().GetActive(), res.GetStatus().GetPrevious())
	})
}

// projectorDropVersion drops the tables of an unused version.
func projectorDropVersion(ctx context.Context, o options, args []string) error {
	fs := cmdFlags("projector drop-version")
	if err := o.parseCmd(fs, args, 2, 2); err != nil {
		return err
	}
	args = fs.Args()
	v, err := strconv.ParseInt(args[1], 10, 32)
	if err != nil || v < 1 {
		return fmt.Errorf("%w: version %q: want a number from 1", errUsage, args[1])
	}
	conn, err := o.dial(o.projector)
	if err != nil {
		return err
	}
	defer conn.Close()
	res, err := ordersv1.NewProjectorAdminServiceClient(conn).DropVersion(ctx, &ordersv1.DropVersionRequest{Projection: args[0], Version: int32(v)})
	if err != nil {
		return err
	}
	return o.print(res, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "dropped %s\n", strings.Join(res.GetDroppedTables(), ", "))
	})
}
