package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// deadLetters is the dead-letter part of RelayAdminService and ProjectorAdminService.
type deadLetters interface {
	ListDeadLetters(ctx context.Context, in *ordersv1.ListDeadLettersRequest, opts ...grpc.CallOption) (*ordersv1.ListDeadLettersResponse, error)
	GetDeadLetter(ctx context.Context, in *ordersv1.GetDeadLetterRequest, opts ...grpc.CallOption) (*ordersv1.GetDeadLetterResponse, error)
	RedriveDeadLetter(ctx context.Context, in *ordersv1.RedriveDeadLetterRequest, opts ...grpc.CallOption) (*ordersv1.RedriveDeadLetterResponse, error)
	DiscardDeadLetter(ctx context.Context, in *ordersv1.DiscardDeadLetterRequest, opts ...grpc.CallOption) (*ordersv1.DiscardDeadLetterResponse, error)
}

// dlqService names a service holding dead letters: its command group, address and client.
type dlqService struct {
	group  string
	addr   func(options) string
	client func(grpc.ClientConnInterface) deadLetters
}

var (
	relayDLQ = dlqService{group: "dlq", addr: func(o options) string { return o.relay },
		client: func(c grpc.ClientConnInterface) deadLetters { return ordersv1.NewRelayAdminServiceClient(c) }}
	projectorDLQ = dlqService{group: "projector-dlq", addr: func(o options) string { return o.projector },
		client: func(c grpc.ClientConnInterface) deadLetters { return ordersv1.NewProjectorAdminServiceClient(c) }}
)

// dlqList lists a page of the dead letters of one service, filtered.
func dlqList(svc dlqService) command {
	return func(ctx context.Context, o options, args []string) error {
		fs := cmdFlags(svc.group + " list")
		filter := dlqFilterFlags(fs)
		limit := fs.Int("limit", 100, "at most this many in the page")
		page := fs.String("page", "", "the next-page token a previous list printed")
		if err := o.parseCmd(fs, args, 0, 0); err != nil {
			return err
		}
		req, err := filter()
		if err != nil {
			return err
		}
		req.PageSize, req.PageToken = int32(*limit), *page
		conn, err := o.dial(svc.addr(o))
		if err != nil {
			return err
		}
		defer conn.Close()
		res, err := svc.client(conn).ListDeadLetters(ctx, req)
		if err != nil {
			return err
		}
		return o.print(res, func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "ID\tTOPIC\tAGGREGATE\tSEQ\tEVENT TYPE\tCREATED\tREDRIVEN\tREASON")
			for _, dl := range res.GetDeadLetters() {
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", dl.GetId(), dl.GetTopic(), orDash(dl.GetAggregateId()), dl.GetSequence(),
					orDash(dl.GetEventType()), when(dl.GetCreatedAt()), when(dl.GetRedrivenAt()), shorten(dl.GetReason(), 100))
			}
			if next := res.GetNextPageToken(); next != "" {
				fmt.Fprintf(w, "more: %s list -page %s (same filters)\n", svc.group, next)
			}
		})
	}
}

// dlqFilterFlags defines the filter flags of the dead-letter lists on fs and returns the
// function that builds the filtered request once fs is parsed (an errUsage naming a bad flag).
func dlqFilterFlags(fs *flag.FlagSet) func() (*ordersv1.ListDeadLettersRequest, error) {
	req := &ordersv1.ListDeadLettersRequest{}
	fs.StringVar(&req.Topic, "topic", "", "event topic (default: every event topic)")
	fs.StringVar(&req.AggregateId, "aggregate", "", "only this aggregate's")
	fs.StringVar(&req.ReasonContains, "reason", "", "only those whose reason contains this text")
	since := fs.String("since", "", "only those recorded at or after this time (RFC 3339, or a duration ago: 2h)")
	until := fs.String("until", "", "only those recorded before this time (RFC 3339, or a duration ago)")
	return func() (*ordersv1.ListDeadLettersRequest, error) {
		var err error
		if req.CreatedAfter, err = timeArg(*since); err != nil {
			return nil, fmt.Errorf("%w: %s (-since: %v)", errUsage, synopsis(fs.Name()), err)
		}
		if req.CreatedBefore, err = timeArg(*until); err != nil {
			return nil, fmt.Errorf("%w: %s (-until: %v)", errUsage, synopsis(fs.Name()), err)
		}
		return req, nil
	}
}

// timeArg parses a time flag: empty (unset), RFC 3339, or a duration meaning that long ago.
func timeArg(v string) (*timestamppb.Timestamp, error) {
	if v == "" {
		return nil, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return timestamppb.New(time.Now().Add(-d)), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, fmt.Errorf("%q is neither an RFC 3339 time nor a duration", v)
	}
	return timestamppb.New(t), nil
}

// dlqOne is show, redrive or discard of one dead letter.
func dlqOne(svc dlqService, verb string) command {
	return func(ctx context.Context, o options, args []string) error {
		fs := cmdFlags(svc.group + " " + verb)
		topic := fs.String("topic", "", "event topic (default: search every event topic)")
		if err := o.parseCmd(fs, args, 1, 1); err != nil {
			return err
		}
		conn, err := o.dial(svc.addr(o))
		if err != nil {
			return err
		}
		defer conn.Close()
		c, id := svc.client(conn), fs.Arg(0)
		switch verb {
		case "show":
			res, err := c.GetDeadLetter(ctx, &ordersv1.GetDeadLetterRequest{Id: id, Topic: *topic})
			if err != nil {
				return err
			}
			dl := res.GetDeadLetter()
			return o.print(res, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "id\t%s\ntopic\t%s\naggregate\t%s#%d\nevent\t%s %s\ncreated\t%s\nre-driven\t%s\nreason\t%s\nbytes\t%d\n",
					dl.GetId(), dl.GetTopic(), orDash(dl.GetAggregateId()), dl.GetSequence(), orDash(dl.GetEventType()), dl.GetEventId(),
					when(dl.GetCreatedAt()), when(dl.GetRedrivenAt()), dl.GetReason(), len(dl.GetEnvelope()))
			})
		case "redrive":
			res, err := c.RedriveDeadLetter(ctx, &ordersv1.RedriveDeadLetterRequest{Id: id, Topic: *topic})
			if err != nil {
				return err
			}
			return o.print(res, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "re-drove %s: %s#%d to %s\n", id, res.GetDeadLetter().GetAggregateId(), res.GetDeadLetter().GetSequence(), res.GetDeadLetter().GetTopic())
			})
		default:
			res, err := c.DiscardDeadLetter(ctx, &ordersv1.DiscardDeadLetterRequest{Id: id, Topic: *topic})
			if err != nil {
				return err
			}
			return o.print(res, func(w *tabwriter.Writer) { fmt.Fprintf(w, "discarded %s\n", id) })
		}
	}
}
