package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/telemetry"
)

// flight is one record of a publish call.
type flight struct {
	a      *aggState
	e      *entry
	dlq    bool
	poison bool // an unsequenced row (set when done): no progress to save
	span   trace.Span
}

// callResult is the outcome of one publish call, per flight.
type callResult struct {
	flights  []*flight
	errs     []error
	rejected bool // the breaker did not let the call through
}

// round prepares the due work of the ready aggregates (progress, sequencing, gap filling) and
// starts publish calls: ordinary records packed into calls within the budget (all records of one
// aggregate in the same call, consecutive, so they go out in one produce request), dead letters
// and records that must be tried alone in calls of their own.
func (l *lane) round(ctx context.Context, ready []*aggState) {
	l.loadProgress(ctx, ready)
	maxBytes := l.p.d.Publisher.MaxMessageBytes()
	var batch, solo []*flight
	batchRecords, batchBytes := 0, 0
	flush := func() {
		if len(batch) > 0 {
			l.start(ctx, batch)
		}
		batch, batchRecords, batchBytes = nil, 0, 0
	}
	for _, a := range ready {
		entries, err := l.prepare(ctx, a)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.p.d.Logger.Warn("relay: aggregate held back", "aggregate_id", a.id, "err", err)
			l.backOff(a)
			continue
		}
		if len(entries) == 0 {
			continue
		}
		if e := entries[0]; e.dlqReason != "" || e.solo {
			if e.dlqReason != "" && !e.dlqChecked {
				// Here, not in the call: the lane adds changes to an entry even in flight.
				e.dlqID = rowIDOf(e)
			}
			solo = append(solo, &flight{a: a, e: e, dlq: e.dlqReason != ""})
			continue
		}
		// Keep as many of the aggregate's records as fit an empty call.
		n, size := 0, 0
		for _, e := range entries {
			if n+1 > callRecords || size+e.size > maxBytes {
				break
			}
			n, size = n+1, size+e.size
		}
		if batchRecords+n > callRecords || batchBytes+size > maxBytes {
			flush()
		}
		for _, e := range entries[:n] {
			batch = append(batch, &flight{a: a, e: e})
		}
		batchRecords, batchBytes = batchRecords+n, batchBytes+size
	}
	flush()
	for _, f := range solo {
		l.start(ctx, []*flight{f})
	}
}

// loadProgress reads, in few queries, the last published sequence of the aggregates seen for
// the first time (those a failed query left unread stay unloaded, and prepare reads each again).
func (l *lane) loadProgress(ctx context.Context, ready []*aggState) {
	var todo []string
	for _, a := range ready {
		if !a.loaded {
			if !ids.Valid(a.id) {
				a.loaded = true // only poison can live here
				continue
			}
			todo = append(todo, a.id)
		}
	}
	if len(todo) == 0 {
		return
	}
	last, err := l.p.d.Progress.Load(ctx, todo)
	if err != nil {
		l.p.d.Metrics.StoreErrors.WithLabelValues("load_progress").Inc()
	}
	for _, a := range ready {
		if seq, read := last[a.id]; read && !a.loaded {
			a.last, a.loaded = seq, true
		}
	}
}

// start runs a publish call in the background; its result comes back on l.results.
func (l *lane) start(ctx context.Context, flights []*flight) {
	for _, f := range flights {
		f.a.inFlight = true
	}
	l.calls++
	go func() { l.results <- l.call(ctx, flights) }()
}

func (l *lane) backOff(a *aggState) {
	a.retryAt = time.Now().Add(a.bo.NextBackOff())
}

// message builds the record of a flight and starts its span.
func (l *lane) message(ctx context.Context, f *flight) kafkago.Message {
	e := f.e
	topic := e.topic
	if f.dlq {
		topic = okafka.DLQTopic(e.topic)
	}
	pctx := telemetry.ContextWithTraceContext(ctx, e.env.TraceParent, e.env.TraceState)
	sctx, span := l.p.d.Tracer.Start(pctx, topic+" publish", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "kafka"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", topic),
			attribute.String("messaging.kafka.message.key", e.env.AggregateID),
			attribute.String("ordersys.event_id", e.env.EventID),
			attribute.String("ordersys.event_type", e.env.EventType),
			attribute.Int64("ordersys.sequence", e.seq),
			attribute.Int("ordersys.attempt", e.attempts+1),
			// The same keys as the command service's and the projector's spans, so one search
			// by correlation_id finds the command's trace in every service.
			attribute.String("correlation_id", e.env.CorrelationID),
			attribute.String("causation_id", e.env.CausationID),
			attribute.String("aggregate_id", e.env.AggregateID),
		))
	f.span = span
	tp, ts := telemetry.TraceContextFromContext(sctx)
	if tp == "" {
		tp, ts = e.env.TraceParent, e.env.TraceState
	}
	msg := kafkago.Message{Topic: topic, Key: []byte(e.env.AggregateID), Value: e.value,
		Headers: okafka.EnvelopeHeaders(e.env, tp, ts)}
	if f.dlq {
		msg.Headers = append(msg.Headers,
			kafkago.Header{Key: okafka.HeaderDLQReason, Value: []byte(e.dlqReason)},
			kafkago.Header{Key: okafka.HeaderDLQSourceTopic, Value: []byte(e.topic)},
			kafkago.Header{Key: okafka.HeaderDLQID, Value: []byte(e.dlqID.String())})
		if okafka.MessageSize(msg) > l.p.d.Publisher.MaxMessageBytes() {
			msg.Value = nil
			msg.Headers = append(msg.Headers, kafkago.Header{Key: okafka.HeaderDLQValueOmitted, Value: []byte("true")})
		}
	}
	return msg
}

// errDeadLetterStore marks a call's error that came from the dead_letters table, not the broker.
var errDeadLetterStore = errors.New("dead-letter store")

// call runs one publish call through the breaker (in its own goroutine: it touches only its
// flights' entries, which the lane leaves alone while they are in flight, but for adding the
// changes of a row read again: the call reads no entry's changes).
func (l *lane) call(ctx context.Context, flights []*flight) *callResult {
	d := l.p.d
	res := &callResult{flights: flights, errs: make([]error, len(flights))}
	var send []*flight
	var idx []int
	for i, f := range flights {
		if f.dlq {
			if err := l.checkDeadLetter(ctx, f.e); err != nil {
				res.errs[i] = fmt.Errorf("%w: look up dead letter: %w", errDeadLetterStore, err)
				continue
			}
			if f.e.dlqEarlier {
				continue // already in the dead-letter topic and table: settled as they are
			}
			if f.e.dlqPublished {
				// On the topic; its record failed: only the record is written again.
				if err := l.recordDeadLetter(ctx, f.e); err != nil {
					res.errs[i] = fmt.Errorf("%w: record dead letter: %w", errDeadLetterStore, err)
				}
				continue
			}
		}
		send = append(send, f)
		idx = append(idx, i)
	}
	if len(send) == 0 {
		return res
	}
	allow, ok := d.Breaker.Allow()
	if !ok {
		d.Metrics.Failed.WithLabelValues("rejected").Add(float64(len(send)))
		res.rejected = true
		for _, i := range idx {
			res.errs[i] = ErrBrokerUnavailable
		}
		return res
	}
	msgs := make([]kafkago.Message, len(send))
	for j, f := range send {
		if f.e.attempts > 0 {
			d.Metrics.Retried.Inc()
		}
		msgs[j] = l.message(ctx, f)
	}
	if ctx.Err() != nil || (d.Fence != nil && !d.Fence.Valid()) {
		// The term is ending (handed over), or this instance was paused past the lease's term
		// (or lost it): another instance may be publishing these aggregates by now, and this
		// one's view of them is stale. Nothing goes out.
		allow(nil)
		for j, f := range send {
			res.errs[idx[j]] = ErrNotLeader
			f.span.SetStatus(codes.Error, ErrNotLeader.Error())
			f.span.End()
		}
		d.Metrics.Failed.WithLabelValues("fenced").Add(float64(len(send)))
		res.rejected = true // not an attempt: the lane waits, like behind an open breaker
		return res
	}
	errs := d.Publisher.Publish(ctx, msgs)
	var callErr error
	failedAll := true
	for j, f := range send {
		err := errs[j]
		res.errs[idx[j]] = err
		switch {
		case err == nil:
			failedAll = false
		case okafka.IsPermanent(err):
			failedAll = false // the record's own trouble, not the broker's
			f.span.RecordError(err)
			f.span.SetStatus(codes.Error, err.Error())
		default:
			if callErr == nil {
				callErr = err
			}
			f.span.RecordError(err)
			f.span.SetStatus(codes.Error, err.Error())
		}
		f.span.End()
	}
	if failedAll && callErr != nil && ctx.Err() == nil {
		allow(callErr)
	} else {
		allow(nil)
	}
	// A dead letter on its topic is recorded in the table (full bytes, reason): what
	// `dlq list` shows and re-drives, and what tells a later reading of its row that it is done.
	for j, f := range send {
		if f.dlq && res.errs[idx[j]] == nil {
			f.e.dlqPublished = true
			if err := l.recordDeadLetter(ctx, f.e); err != nil {
				res.errs[idx[j]] = fmt.Errorf("%w: record dead letter: %w", errDeadLetterStore, err)
			}
		}
	}
	return res
}

// apply takes a call's outcome into the lane's state: acknowledged records advance their
// aggregate and go to the committer; failed ones are scheduled for retry or for the dead-letter
// path. An aggregate's records in a call are consecutive; once one fails, the later ones are
// not counted as published even if acknowledged (they went in the same produce request, so
// this does not happen; if it did, they would only be sent again).
func (l *lane) apply(ctx context.Context, r *callResult) {
	d := l.p.d
	l.calls--
	if r.rejected {
		l.blockedUntil = time.Now().Add(100 * time.Millisecond)
	}
	var done []*flight
	failed := map[*aggState]bool{}
	for i, f := range r.flights {
		a, e, err := f.a, f.e, r.errs[i]
		a.inFlight = false
		if err == nil && failed[a] {
			d.Logger.Warn("relay: record acknowledged after an earlier record of its aggregate failed in the same call; it will be sent again",
				"aggregate_id", a.id, "sequence", e.seq)
			continue
		}
		switch {
		case err == nil:
			a.bo.Reset()
			a.retryAt = time.Time{}
			if e.dlqKind == dlqUndecodable && !isSequenced(a, e) {
				// A poison row is not part of the stream: progress stays.
				f.poison = true
				for k, p := range a.poison {
					if p == e {
						a.poison = append(a.poison[:k], a.poison[k+1:]...)
						break
					}
				}
			} else {
				if e.seq > a.last {
					a.remember(e.seq, e.env.EventID)
					a.last = e.seq
				}
				delete(a.pending, e.seq)
			}
			done = append(done, f)
		case r.rejected:
			// Not an attempt: the breaker is open.
		case okafka.IsPermanent(err) && !f.dlq:
			failed[a] = true
			e.attempts++
			d.Metrics.Failed.WithLabelValues("permanent").Inc()
			switch {
			case errors.Is(err, okafka.ErrMessageTooLarge):
				e.dlqReason, e.dlqKind = err.Error(), dlqTooLarge
			case e.solo:
				e.dlqReason, e.dlqKind = "refused by the broker: "+err.Error(), dlqRefused
			default:
				e.solo = true // a batch may have been refused because of another record
			}
		default:
			if !failed[a] {
				l.backOff(a)
			}
			failed[a] = true
			e.attempts++
			if !errors.Is(err, errDeadLetterStore) { // counted in store_errors_total, not a publish failure
				d.Metrics.Failed.WithLabelValues("transient").Inc()
			}
			d.Logger.Debug("relay: publish failed, will retry", "aggregate_id", a.id, "sequence", e.seq, "attempt", e.attempts, "err", err)
		}
	}
	if len(done) > 0 {
		select {
		case l.commits <- done:
		case <-ctx.Done():
		}
	}
}
