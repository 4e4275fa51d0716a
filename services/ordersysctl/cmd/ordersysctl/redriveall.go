package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// maxRedriveAll bounds the dead letters one redrive-all collects (run it again for more).
const maxRedriveAll = 100_000

// errSomeFailed: a bulk operation finished, but not every item succeeded.
var errSomeFailed = errors.New("not every dead letter was re-driven")

// dlqRedriveAll re-drives every dead letter of one service that matches the list filters (those
// re-driven before only with -again), one call each, showing its progress: a bar on
// a terminal, else a line per 100. It collects the matching ids first (at most maxRedriveAll),
// so that the progress has a total and dead letters recorded meanwhile are left for the next
// run. Each call has the global -timeout; the whole run has none.
func dlqRedriveAll(svc dlqService) command {
	return func(ctx context.Context, o options, args []string) error {
		fs := cmdFlags(svc.group + " redrive-all")
		filter := dlqFilterFlags(fs)
		again := fs.Bool("again", false, "also those re-driven before")
		if err := o.parseCmd(fs, args, 0, 0); err != nil {
			return err
		}
		req, err := filter()
		if err != nil {
			return err
		}
		conn, err := o.dial(svc.addr(o))
		if err != nil {
			return err
		}
		defer conn.Close()
		c := svc.client(conn)
		ctx = context.WithoutCancel(ctx)
		call := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, o.timeout) }

		var todo []*ordersv1.DeadLetter
		req.PageSize = 500
		for {
			cctx, cancel := call()
			res, err := c.ListDeadLetters(cctx, req)
			cancel()
			if err != nil {
				return err
			}
			for _, dl := range res.GetDeadLetters() {
				if dl.GetRedrivenAt() == nil || *again {
					todo = append(todo, dl)
				}
			}
			if req.PageToken = res.GetNextPageToken(); req.PageToken == "" || len(todo) >= maxRedriveAll {
				break
			}
		}
		todo = todo[:min(len(todo), maxRedriveAll)]

		view := newProgressView(o, svc.group+" redrive-all")
		started, failed := time.Now(), 0
		line := func(done int) string {
			rate := float64(done) / max(time.Since(started).Seconds(), 1e-3)
			eta := time.Duration(0)
			if rate > 0 {
				eta = time.Duration(float64(len(todo)-done)/rate) * time.Second
			}
			return fmt.Sprintf("%d/%d re-driven  %d failed  %.0f/s  ETA %s", done-failed, len(todo), failed, rate, eta.Round(time.Second))
		}
		for i, dl := range todo {
			cctx, cancel := call()
			_, err := c.RedriveDeadLetter(cctx, &ordersv1.RedriveDeadLetterRequest{Id: dl.GetId(), Topic: dl.GetTopic()})
			cancel()
			if err != nil {
				failed++
				fmt.Fprintf(o.stderr, "ordersysctl: re-drive %s (%s#%d): %v\n", dl.GetId(), dl.GetAggregateId(), dl.GetSequence(), err)
			}
			if o.output != "json" && (view.bar != nil || (i+1)%100 == 0) {
				view.update(float64(i+1)/float64(len(todo)), line(i+1))
			}
		}
		if o.output == "json" {
			if err := o.print(&ordersv1.ListDeadLettersResponse{DeadLetters: todo}, nil); err != nil {
				return err
			}
		} else {
			view.finish(line(len(todo)) + "  done")
		}
		if failed > 0 {
			return fmt.Errorf("%w: %d of %d failed", errSomeFailed, failed, len(todo))
		}
		return nil
	}
}
