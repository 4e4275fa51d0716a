package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// command runs one subcommand with its own arguments.
type command func(ctx context.Context, o options, args []string) error

// commands are keyed by "<group> <verb>".
var commands = map[string]command{
	"relay status":    relayStatus,
	"dlq list":        dlqList(relayDLQ),
	"dlq show":        dlqOne(relayDLQ, "show"),
	"dlq redrive":     dlqOne(relayDLQ, "redrive"),
	"dlq discard":     dlqOne(relayDLQ, "discard"),
	"dlq redrive-all": dlqRedriveAll(relayDLQ),

	"projector status":          projectorStatus,
	"projector abort-rebuild":   projectorAbortRebuild,
	"projector rebuild":         projectorRebuild,
	"projector watch-rebuild":   projectorWatchRebuild,
	"projector switch-back":     projectorSwitchBack,
	"projector drop-version":    projectorDropVersion,
	"projector-dlq list":        dlqList(projectorDLQ),
	"projector-dlq show":        dlqOne(projectorDLQ, "show"),
	"projector-dlq redrive":     dlqOne(projectorDLQ, "redrive"),
	"projector-dlq discard":     dlqOne(projectorDLQ, "discard"),
	"projector-dlq redrive-all": dlqRedriveAll(projectorDLQ),
	"order get":                 orderGet,
	"order history":             orderHistory,
	"republish":                 republish,
	"pii-kek new":               piiKEK("new"),
	"pii-kek rotate":            piiKEK("rotate"),
	"pii-kek drop-old":          piiKEK("drop-old"),
}

// print writes m as JSON (-o json) or calls table.
func (o options) print(m proto.Message, table func(w *tabwriter.Writer)) error {
	if o.output == "json" {
		b, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: true}.Marshal(m)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(o.stdout, string(b))
		return err
	}
	tw := tabwriter.NewWriter(o.stdout, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

func relayStatus(ctx context.Context, o options, args []string) error {
	if err := o.parseCmd(cmdFlags("relay status"), args, 0, 0); err != nil {
		return err
	}
	conn, err := o.dial(o.relay)
	if err != nil {
		return err
	}
	defer conn.Close()
	st, err := ordersv1.NewRelayAdminServiceClient(conn).GetRelayStatus(ctx, &ordersv1.GetRelayStatusRequest{})
	if err != nil {
		return err
	}
	return o.print(st, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "OWNER\tLEADER\tSHARDS\tBREAKER\tLAG\tIN FLIGHT\tPUBLISHED\tDEAD LETTERED\tCHECKPOINT AGE")
		shards := make([]string, 0, len(st.GetShards()))
		for _, n := range st.GetShards() {
			shards = append(shards, fmt.Sprint(n))
		}
		cursors := make([]string, 0, len(st.GetCheckpointAgeSeconds()))
		for c, age := range st.GetCheckpointAgeSeconds() {
			cursors = append(cursors, fmt.Sprintf("%s=%.1fs", c, age))
		}
		sort.Strings(cursors)
		fmt.Fprintf(w, "%s\t%v\t%s\t%s\t%.1fs\t%d\t%d\t%d\t%s\n", st.GetOwner(), st.GetLeader(), orDash(strings.Join(shards, ",")), st.GetBreakerState(), st.GetLagSeconds(),
			st.GetInFlight(), st.GetPublished(), st.GetDeadLettered(), orDash(strings.Join(cursors, " ")))
	})
}

func orderGet(ctx context.Context, o options, args []string) error {
	fs := cmdFlags("order get")
	if err := o.parseCmd(fs, args, 1, 1); err != nil {
		return err
	}
	conn, err := o.dial(o.query)
	if err != nil {
		return err
	}
	defer conn.Close()
	res, err := ordersv1.NewOrderQueryServiceClient(conn).GetOrder(ctx, &ordersv1.GetOrderRequest{OrderId: fs.Arg(0)})
	if err != nil {
		return err
	}
	ord := res.GetOrder()
	return o.print(res, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "order\t%s\ncustomer\t%s\nstatus\t%s\nversion\t%d\ntotal\t%d cents\nitems\t%d\nupdated\t%s\n",
			ord.GetOrderId(), ord.GetCustomerId(), ord.GetStatus(), ord.GetVersion(), ord.GetTotalCents(), len(ord.GetItems()), when(ord.GetUpdatedAt()))
	})
}

func orderHistory(ctx context.Context, o options, args []string) error {
	fs := cmdFlags("order history")
	limit := fs.Int("limit", 100, "at most this many events (the first ones)")
	if err := o.parseCmd(fs, args, 1, 1); err != nil {
		return err
	}
	conn, err := o.dial(o.query)
	if err != nil {
		return err
	}
	defer conn.Close()
	res, err := ordersv1.NewOrderQueryServiceClient(conn).GetOrderHistory(ctx, &ordersv1.GetOrderHistoryRequest{OrderId: fs.Arg(0), PageSize: int32(*limit)})
	if err != nil {
		return err
	}
	return o.print(res, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "SEQ\tTYPE\tOCCURRED\tCORRELATION\tUSER")
		for _, ev := range res.GetEvents() {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", ev.GetSequence(), ev.GetEventType(), when(ev.GetOccurredAt()), ev.GetCorrelationId(), orDash(ev.GetUserId()))
		}
		if res.GetNextPageToken() != "" {
			fmt.Fprintln(w, "…\t(more: raise -limit)")
		}
	})
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func when(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().Format(time.RFC3339)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// republish re-publishes events from the event store, showing its progress (newProgressView).
func republish(ctx context.Context, o options, args []string) error {
	fs := cmdFlags("republish")
	job := fs.String("job", "", "name of the run over every aggregate: run it again to resume it (needed without IDs)")
	topic := fs.String("topic", "", "target topic (default: each aggregate type's event topic)")
	rate := fs.Int("rate", 0, "at most this many events a second (0: the relay's default, 1000)")
	if err := o.parseCmd(fs, args, 0, -1); err != nil {
		return err
	}
	if *job == "" && fs.NArg() == 0 {
		return fmt.Errorf("%w: %s (give -job for every aggregate, or aggregate IDs)", errUsage, synopsis("republish"))
	}
	conn, err := o.dial(o.relay)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A re-publication outlives the default call deadline.
	ctx = context.WithoutCancel(ctx)
	stream, err := ordersv1.NewRelayAdminServiceClient(conn).RepublishEvents(ctx, &ordersv1.RepublishEventsRequest{
		Job: *job, Topic: *topic, RatePerSecond: int32(*rate), AggregateIds: fs.Args()})
	if err != nil {
		return err
	}
	view := newProgressView(o, "republish")
	for {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if o.output == "json" {
			if err := o.print(p, nil); err != nil {
				return err
			}
			continue
		}
		line := fmt.Sprintf("%5.1f%%  %d aggregates  %d events  %.0f events/s  ETA %s", 100*p.GetFraction(), p.GetAggregates(),
			p.GetEvents(), p.GetEventsPerSecond(), time.Duration(p.GetEtaSeconds())*time.Second)
		if p.GetDone() {
			view.finish(line + "  done")
			continue
		}
		view.update(p.GetFraction(), line)
	}
}
