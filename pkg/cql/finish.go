package cql

import (
	"context"
	"sync"
	"time"
)

// DefaultFinishers is the default Options.Finishers.
const DefaultFinishers = 512

// finishTimeout bounds one background finish (the outbox rows, written at most twice, and the
// intent's deletion); past it the intent stays for recovery.
const finishTimeout = 30 * time.Second

// finishers runs the last steps of committed appends in the background, at most n at once.
type finishers struct {
	slots chan struct{} // nil: finish before Append returns
	wg    sync.WaitGroup
}

func newFinishers(n int) finishers {
	if n < 0 {
		return finishers{}
	}
	return finishers{slots: make(chan struct{}, n)}
}

// finishLater writes the committed intent's outbox rows and then deletes the intent, in the
// background when a slot is free, else at once (so a slow store slows the writers down instead
// of piling up work). Either way nothing is lost if it fails or the process dies meanwhile:
// the intent stays and recovery (RecoverIntents) writes the rows from it after its grace.
//
// Answering before the rows are written takes two of the four sequential round trips of an
// append off the command's latency: what the client waits for is the intent and the
// conditional batch. The rows of a later append of the same aggregate may be written before
// this one's; the relay orders an aggregate's events by sequence and fills gaps from the event
// store, so it publishes them in order all the same.
func (st *EventStore) finishLater(ctx context.Context, in *intent) {
	if st.fin.slots == nil {
		st.finish(ctx, in)
		return
	}
	select {
	case st.fin.slots <- struct{}{}:
	default:
		st.finish(ctx, in)
		return
	}
	st.fin.wg.Add(1)
	go func() {
		defer func() { <-st.fin.slots; st.fin.wg.Done() }()
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
		defer cancel()
		st.finish(fctx, in)
	}()
}

// finish writes the outbox rows of a committed intent, then deletes the intent.
func (st *EventStore) finish(ctx context.Context, in *intent) {
	if err := st.writeOutbox(ctx, in); err != nil {
		return
	}
	st.opts.Hook(StepOutboxWritten)
	if err := st.deleteIntent(ctx, in); err == nil {
		st.opts.Hook(StepIntentSettled)
	}
}

// Close waits until the appends finishing in the background are done, or ctx ends (their
// intents then stay for recovery). Call it after the last Append, before closing the session.
func (st *EventStore) Close(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		st.fin.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
