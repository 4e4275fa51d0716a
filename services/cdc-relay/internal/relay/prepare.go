package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gocql/gocql"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	"github.com/ordersys/ordersys/pkg/es"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
)

// prepare drops what is already published, settles poison rows, fills a gap before the next
// event, and returns what to publish next: the run of consecutive entries from last+1 (at most
// recordsPerAgg), or a single entry that must go alone (a dead letter, a record to retry alone).
func (l *lane) prepare(ctx context.Context, a *aggState) ([]*entry, error) {
	d := l.p.d
	if !a.loaded {
		last, err := d.Progress.Load(ctx, []string{a.id})
		if err != nil {
			d.Metrics.StoreErrors.WithLabelValues("load_progress").Inc()
			return nil, err
		}
		a.last, a.loaded = last[a.id], true // read: an entry, 0 when never published
	}
	for seq, e := range a.pending {
		if seq <= a.last {
			for _, c := range e.changes {
				l.dropPublished(a, c)
			}
			delete(a.pending, seq)
		}
	}
	if err := l.resolveSuspects(ctx, a); err != nil {
		return nil, err
	}
	// Poison rows: a copy of a committed event in event_store replaces a broken outbox row;
	// anything else goes to the dead-letter path, one per round.
	for i := 0; i < len(a.poison); i++ {
		p := a.poison[i]
		if !p.checked && ids.Valid(a.id) && p.seq > 0 {
			envs, err := d.Events.LoadRaw(ctx, a.id, p.seq, p.seq)
			if err != nil {
				d.Metrics.StoreErrors.WithLabelValues("load_events").Inc()
				return nil, err
			}
			if len(envs) == 1 && (p.env.EventID == "" || envs[0].EventID == p.env.EventID) {
				if value, encErr := codec.MarshalEnvelope(envs[0]); encErr == nil {
					a.poison = append(a.poison[:i], a.poison[i+1:]...)
					i--
					if p.seq <= a.last {
						for _, c := range p.changes {
							d.Metrics.Duplicates.WithLabelValues(c.Cursor).Inc()
							c.settle(Duplicate)
						}
						continue
					}
					if e := a.pending[p.seq]; e != nil {
						e.changes = append(e.changes, p.changes...)
						continue
					}
					a.pending[p.seq] = l.newEntry(envs[0], value, p.topic, p.committed, p.changes)
					continue
				}
			}
		}
		p.checked = true
		return []*entry{p}, nil
	}
	if len(a.pending) == 0 {
		return nil, nil
	}
	next := a.last + 1
	if a.pending[next] == nil {
		first := int64(-1)
		var topic string
		for seq, e := range a.pending {
			if first < 0 || seq < first {
				first, topic = seq, e.topic
			}
		}
		to := min(first-1, next+int64(l.p.cfg.FillChunk)-1)
		envs, err := d.Events.LoadRaw(ctx, a.id, next, to)
		if err != nil {
			d.Metrics.StoreErrors.WithLabelValues("load_events").Inc()
			return nil, err
		}
		for _, env := range envs {
			if env.Sequence < next || env.Sequence > to || a.pending[env.Sequence] != nil {
				continue
			}
			value, encErr := codec.MarshalEnvelope(env)
			e := l.newEntry(env, value, topic, time.Time{}, nil)
			if encErr != nil {
				e.dlqReason, e.dlqKind = "event_store row cannot be encoded: "+encErr.Error(), dlqUnencodable
			}
			a.pending[env.Sequence] = e
			d.Metrics.GapFilled.Inc()
		}
		if a.pending[next] == nil {
			return nil, fmt.Errorf("sequence %d of %s is not in event_store yet (next outbox row has %d)", next, a.id, first)
		}
	}
	if e := a.pending[next]; e.dlqReason != "" || e.solo {
		return []*entry{e}, nil
	}
	run := []*entry{}
	for seq := next; len(run) < recordsPerAgg; seq++ {
		e := a.pending[seq]
		if e == nil || e.dlqReason != "" || e.solo {
			break
		}
		run = append(run, e)
	}
	return run, nil
}

// newEntry builds a pending entry; a record too large to publish is marked for the dead-letter
// path at once.
func (l *lane) newEntry(env es.Envelope, value []byte, topic string, committed time.Time, changes []*Change) *entry {
	e := &entry{seq: env.Sequence, env: env, value: value, topic: topic, committed: committed, changes: changes}
	// The traceparent header is rewritten at publish time with one of the same length.
	e.size = okafka.MessageSize(kafkago.Message{Key: []byte(env.AggregateID), Value: value,
		Headers: okafka.EnvelopeHeaders(env, traceparentShape, env.TraceState)})
	if limit := l.p.d.Publisher.MaxMessageBytes(); e.size > limit {
		e.dlqReason, e.dlqKind = fmt.Sprintf("%s: record of about %d bytes exceeds the limit of %d bytes",
			okafka.ErrMessageTooLarge, e.size, limit), dlqTooLarge
	}
	return e
}

// rowIDOf returns the id of the outbox row behind e (its first change's), zero when none is known
// (an event read from event_store to fill a gap).
func rowIDOf(e *entry) gocql.UUID {
	for _, c := range e.changes {
		if c.RowID != (gocql.UUID{}) {
			return c.RowID
		}
	}
	return gocql.UUID{}
}

// checkDeadLetter runs once per entry before its dead letter is first sent: it gives the dead
// letter its id (the outbox row's when known, set by the lane before the call: see round, so
// that every reading of a row names the same dead letter) and marks dlqEarlier one whose row
// was dead-lettered already. A dead letter is recorded in the table only once it is on the topic
// (recordDeadLetter), so a record found here means both are done; a reading that stopped in
// between (a broker outage, then a stop or a handover) left no record, and this one sends the
// dead letter again (a repeat on the DLQ topic, which its readers tolerate) instead of settling
// a row whose dead letter never reached it.
func (l *lane) checkDeadLetter(ctx context.Context, e *entry) error {
	if e.dlqChecked {
		return nil
	}
	if e.dlqID == (gocql.UUID{}) {
		e.dlqID = gocql.TimeUUID() // an event read from event_store: progress moves past it once published
	} else {
		found, err := l.p.d.DeadLetters.Exists(ctx, e.topic, e.dlqID)
		if err != nil {
			l.p.d.Metrics.StoreErrors.WithLabelValues("dead_letter").Inc()
			return err
		}
		e.dlqEarlier = found
	}
	e.dlqChecked = true
	return nil
}

// recordDeadLetter writes the dead letter's record, under its id, once it is on the topic.
func (l *lane) recordDeadLetter(ctx context.Context, e *entry) error {
	err := l.p.d.DeadLetters.Put(ctx, &cql.DeadLetter{Topic: e.topic, ID: e.dlqID, AggregateID: e.env.AggregateID, Sequence: e.seq,
		EventID: e.env.EventID, EventType: e.env.EventType, Reason: e.dlqReason, Envelope: e.value})
	if err != nil {
		l.p.d.Metrics.StoreErrors.WithLabelValues("dead_letter").Inc()
		return err
	}
	e.dlqRecorded = true
	if e.dlqKind == dlqUndecodable || e.dlqKind == dlqUnencodable {
		l.p.d.Decode.Undecodable(ctx, e.env.AggregateID, e.seq, e.env.EventID, string(e.dlqKind), e.topic+".dlq", errors.New(e.dlqReason))
	}
	return nil
}
