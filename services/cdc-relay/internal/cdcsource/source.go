// Package cdcsource is the relay source for ScyllaDB: it reads the CDC log of outbox_messages
// with github.com/scylladb/scylla-cdc-go, keeps its position per CDC stream in a table
// (TableBackedProgressManager) so that a restart resumes where it stopped, advances quiet streams
// on the library's empty notifications, and never acknowledges a change before the pipeline has
// settled it: a change that cannot be handed over stops the reader with an error (the relay
// restarts it) rather than being skipped.
//
// It needs ScyllaDB with CDC enabled on the outbox (the scylla schema profile); it has not been
// run against a live ScyllaDB in this repository (only its translation is unit-tested).
package cdcsource

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gocql/gocql"
	scyllacdc "github.com/scylladb/scylla-cdc-go"

	"github.com/ordersys/ordersys/services/cdc-relay/internal/relay"
)

// Config tunes the CDC source.
type Config struct {
	// Keyspace holds outbox_messages and the progress table.
	Keyspace string
	// ProgressTable is the table of per-stream positions (default cdc_relay_progress; created by
	// the library if missing).
	ProgressTable string
	// ApplicationName keys the positions in the progress table (default cdc-relay).
	ApplicationName string
	// ConfidenceWindow is the library's safety window: changes younger than it are not read yet
	// (default DefaultConfidenceWindow, the library's own default). cdc$time is the writer's
	// client-side timestamp, so a change can become visible later than its time says (clock
	// skew, a GC pause between taking the timestamp and writing, a slow replica): the window
	// must exceed that delay, or the change lands in a window already read.
	ConfidenceWindow time.Duration
	// RescanLag is how far behind the main reader the backstop reader reads (default 30s,
	// ORDERSYS_RELAY_RESCAN_WINDOW): a second reader with its own positions and a confidence
	// window of ConfidenceWindow + RescanLag hands over every change again; the sequencer drops
	// what was published and publishes what the main reader missed. Negative disables it.
	RescanLag time.Duration
	// RescanInterval is the backstop reader's pause between queries (default 1s).
	RescanInterval time.Duration
	// PollInterval is the pause between queries of a stream batch (default 50ms).
	PollInterval time.Duration
	// ChangeAgeLimit is how far back the first start reads (default 24h, capped by the CDC TTL).
	ChangeAgeLimit time.Duration
	// Consistency of the CDC log reads (default QUORUM; use LOCAL_QUORUM with several DCs).
	Consistency gocql.Consistency
	// SaveEvery bounds how often a stream's position is written (default 1s).
	SaveEvery time.Duration
}

// Source reads outbox changes from ScyllaDB CDC.
type Source struct {
	cfg Config
	s   *gocql.Session
	m   *relay.Metrics
	log *slog.Logger
}

// New returns the CDC source.
func New(cfg Config, s *gocql.Session, m *relay.Metrics, log *slog.Logger) *Source {
	if cfg.ProgressTable == "" {
		cfg.ProgressTable = "cdc_relay_progress"
	}
	if cfg.ApplicationName == "" {
		cfg.ApplicationName = "cdc-relay"
	}
	if cfg.ConfidenceWindow <= 0 {
		cfg.ConfidenceWindow = DefaultConfidenceWindow
	}
	if cfg.RescanLag == 0 {
		cfg.RescanLag = DefaultRescanLag
	}
	if cfg.RescanInterval <= 0 {
		cfg.RescanInterval = time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	if cfg.ChangeAgeLimit <= 0 {
		cfg.ChangeAgeLimit = 24 * time.Hour
	}
	if cfg.Consistency == 0 {
		cfg.Consistency = gocql.Quorum
	}
	if cfg.SaveEvery <= 0 {
		cfg.SaveEvery = time.Second
	}
	if m == nil {
		m = relay.NewMetrics(nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{cfg: cfg, s: s, m: m, log: log}
}

// Name implements relay.Source.
func (s *Source) Name() string { return "scylla-cdc" }

// Cursor names: the relay.Change.Cursor of what each reader hands over (and the cursor label
// of the relay's metrics).
const (
	// MainCursor is the reader ConfidenceWindow behind now.
	MainCursor = "scylla-cdc"
	// RescanCursor is the backstop reader, RescanLag further behind.
	RescanCursor = "scylla-cdc-rescan"
)

// DefaultConfidenceWindow is scylla-cdc-go's own default (AdvancedReaderConfig.setDefaults).
const DefaultConfidenceWindow = 30 * time.Second

// DefaultRescanLag is how far the backstop reader trails the main one by default.
const DefaultRescanLag = 30 * time.Second

// reader is one scylla-cdc-go reader of the source: its cursor, the application name its
// positions are kept under, its confidence window and its pause between queries.
type reader struct {
	cursor, application string
	window, interval    time.Duration
}

// readers returns the main reader and, unless disabled, the backstop.
func (s *Source) readers() []reader {
	out := []reader{{cursor: MainCursor, application: s.cfg.ApplicationName, window: s.cfg.ConfidenceWindow, interval: s.cfg.PollInterval}}
	if s.cfg.RescanLag > 0 {
		out = append(out, reader{cursor: RescanCursor, application: s.cfg.ApplicationName + "-rescan",
			window: s.cfg.ConfidenceWindow + s.cfg.RescanLag, interval: s.cfg.RescanInterval})
	}
	return out
}

// readerConfig is the library configuration of one reader.
func (s *Source) readerConfig(r reader, pm scyllacdc.ProgressManager, f scyllacdc.ChangeConsumerFactory) *scyllacdc.ReaderConfig {
	return &scyllacdc.ReaderConfig{
		Session:               s.s,
		TableNames:            []string{s.cfg.Keyspace + ".outbox_messages"},
		Consistency:           s.cfg.Consistency,
		ChangeConsumerFactory: f,
		ProgressManager:       pm,
		Logger:                logAdapter{s.log.With("cursor", r.cursor)},
		Advanced: scyllacdc.AdvancedReaderConfig{
			ConfidenceWindowSize:   r.window,
			PostNonEmptyQueryDelay: r.interval,
			PostEmptyQueryDelay:    r.interval,
			PostFailedQueryDelay:   time.Second,
			QueryTimeWindowSize:    30 * time.Second,
			ChangeAgeLimit:         s.cfg.ChangeAgeLimit,
		},
	}
}

// Run reads the CDC log with every reader until ctx ends or one of them stops with an error
// (which stops the others).
func (s *Source) Run(ctx context.Context, sink relay.Sink) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer s.m.ForgetCheckpointAges(s)
	readers := s.readers()
	errs := make(chan error, len(readers))
	for _, r := range readers {
		go func() {
			err := s.run(runCtx, r, sink)
			cancel() // one stopped: stop the others (the relay restarts the source)
			errs <- err
		}()
	}
	first := <-errs // the reader that stopped first says why; the others were stopped by it
	for range readers[1:] {
		<-errs
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// run runs one reader until ctx ends or the library stops.
func (s *Source) run(ctx context.Context, r reader, sink relay.Sink) error {
	pm, err := scyllacdc.NewTableBackedProgressManager(s.s, s.cfg.Keyspace+"."+s.cfg.ProgressTable, r.application)
	if err != nil {
		return fmt.Errorf("cdc progress table %s.%s: %w", s.cfg.Keyspace, s.cfg.ProgressTable, err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := &factory{src: s, sink: sink, cursor: r.cursor, run: runCtx, consumers: map[*consumer]struct{}{}}
	rd, err := scyllacdc.NewReader(ctx, s.readerConfig(r, pm, f))
	if err != nil {
		return fmt.Errorf("start cdc reader %s on %s.outbox_messages: %w", r.cursor, s.cfg.Keyspace, err)
	}
	var once sync.Once
	stop := func() { once.Do(rd.Stop) }
	go func() {
		<-runCtx.Done()
		stop()
	}()
	saverDone := make(chan struct{})
	go func() {
		defer close(saverDone)
		f.saveLoop(runCtx)
	}()
	err = rd.Run(runCtx)
	cancel()
	<-saverDone
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		err = fmt.Errorf("cdc reader %s stopped", r.cursor)
	}
	return err
}

type logAdapter struct{ l *slog.Logger }

func (a logAdapter) Printf(format string, v ...interface{}) {
	a.l.Debug("scylla-cdc: " + fmt.Sprintf(format, v...))
}

// factory creates one consumer per CDC stream and saves their positions periodically.
type factory struct {
	src    *Source
	sink   relay.Sink
	cursor string
	// run ends when the reader's run does; End waits for settlement until then (the library's
	// End has no context of its own).
	run context.Context

	mu        sync.Mutex
	consumers map[*consumer]struct{}
}

// CreateChangeConsumer implements scyllacdc.ChangeConsumerFactory.
func (f *factory) CreateChangeConsumer(ctx context.Context, in scyllacdc.CreateChangeConsumerInput) (scyllacdc.ChangeConsumer, error) {
	c := &consumer{f: f, lib: ctx, reporter: in.ProgressReporter, stream: fmt.Sprintf("%x", []byte(in.StreamID))}
	f.mu.Lock()
	f.consumers[c] = struct{}{}
	f.mu.Unlock()
	return c, nil
}

func (f *factory) saveLoop(ctx context.Context) {
	t := time.NewTicker(f.src.cfg.SaveEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f.mu.Lock()
		cs := make([]*consumer, 0, len(f.consumers))
		for c := range f.consumers {
			cs = append(cs, c)
		}
		f.mu.Unlock()
		var oldest time.Time
		for _, c := range cs {
			c.save(ctx)
			c.mu.Lock()
			if t := c.settled.Time(); c.settled != (gocql.UUID{}) && (oldest.IsZero() || t.Before(oldest)) {
				oldest = t
			}
			c.mu.Unlock()
		}
		if !oldest.IsZero() {
			f.src.m.ReportCheckpointAge(f.src, f.cursor, time.Since(oldest).Seconds())
		}
	}
}

// cmark is one CDC time of a stream, settled when all its changes are.
type cmark struct {
	t         gocql.UUID
	remaining int
}

// consumer handles one CDC stream. The library calls Consume and Empty sequentially; settlement
// callbacks come from the pipeline's goroutines.
type consumer struct {
	f *factory
	// lib is the context the library created the consumer in (that of the generation's readers):
	// it ends when one of them fails, and then so does the wait in End.
	lib      context.Context
	reporter progressReporter
	stream   string

	mu      sync.Mutex
	q       []*cmark
	settled gocql.UUID // every change up to this time is settled
	failed  bool       // a change could not be handed over: its mark never settles

	saveMu sync.Mutex
	saved  gocql.UUID
}

// Consume implements scyllacdc.ChangeConsumer: it hands each outbox row of the change to the
// pipeline. An error stops the reader; the change's position is not saved, so it is read again.
func (c *consumer) Consume(ctx context.Context, change scyllacdc.Change) error {
	return c.consume(ctx, FromChange(change))
}

// consume hands the outbox rows of one CDC change to the pipeline, labelled with the reader's
// cursor, and tracks their settlement.
func (c *consumer) consume(ctx context.Context, rows Rows) error {
	changes, skipped := Translate(rows)
	for _, ch := range changes {
		ch.Cursor = c.f.cursor
	}
	m := c.f.src.m
	m.RowsRead.WithLabelValues(c.f.cursor).Add(float64(len(changes)))
	if skipped > 0 {
		c.f.src.log.Debug("scylla-cdc: skipped non-insert rows", "stream", c.stream, "rows", skipped)
	}
	mk := &cmark{t: rows.Time, remaining: len(changes)}
	c.mu.Lock()
	c.q = append(c.q, mk)
	c.advance()
	c.mu.Unlock()
	for _, ch := range changes {
		ch.OnDone = func(relay.Outcome) {
			c.mu.Lock()
			mk.remaining--
			c.advance()
			c.mu.Unlock()
		}
		if err := c.f.sink.Submit(ctx, ch); err != nil {
			c.mu.Lock()
			c.failed = true
			c.mu.Unlock()
			return fmt.Errorf("hand over cdc change %s: %w", describe(ch), err)
		}
	}
	return nil
}

// Empty implements scyllacdc.ChangeOrEmptyNotificationConsumer: the stream has nothing up to
// ackTime, so its position may move there once earlier changes are settled.
func (c *consumer) Empty(_ context.Context, ackTime gocql.UUID) error {
	c.mu.Lock()
	c.q = append(c.q, &cmark{t: ackTime})
	c.advance()
	c.mu.Unlock()
	return nil
}

// progressReporter saves a stream's position (*scyllacdc.ProgressReporter).
type progressReporter interface {
	MarkProgress(ctx context.Context, p scyllacdc.Progress) error
}

// End implements scyllacdc.ChangeConsumer. The library calls it when it stops reading the
// stream: at a stop, or at the end of a CDC generation, after which it moves the reader to the
// next generation for good (a restart reads from there, never the old generation's streams
// again). So End waits until every change handed over is settled, then saves the position. If
// the reader's run ends first, or the library's readers of the generation failed, or a change
// of the stream could not be handed over, it saves what is settled and returns an error, which
// keeps the library from starting the next generation: the next run reads the stream again
// from its saved position instead of leaving its unsettled changes behind.
func (c *consumer) End() error {
	defer func() {
		c.f.mu.Lock()
		delete(c.f.consumers, c)
		c.f.mu.Unlock()
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var unsettled error
	for unsettled == nil {
		c.mu.Lock()
		n, failed := len(c.q), c.failed // settled marks leave the queue: what is left waits for the pipeline
		c.mu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-c.f.run.Done():
		case <-c.lib.Done():
		case <-tick.C:
			if !failed {
				continue
			}
		}
		unsettled = fmt.Errorf("cdc stream %s: %d change times not settled when the reader stopped", c.stream, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.save(ctx)
	return unsettled
}

func (c *consumer) advance() {
	n := 0
	for n < len(c.q) && c.q[n].remaining <= 0 {
		if scyllacdc.CompareTimeUUID(c.q[n].t, c.settled) > 0 {
			c.settled = c.q[n].t
		}
		n++
	}
	if n > 0 {
		c.q = append(c.q[:0], c.q[n:]...)
	}
}

func (c *consumer) save(ctx context.Context) {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.mu.Lock()
	pos := c.settled
	c.mu.Unlock()
	if pos == (gocql.UUID{}) || pos == c.saved {
		return
	}
	if err := c.reporter.MarkProgress(ctx, scyllacdc.Progress{LastProcessedRecordTime: pos}); err != nil {
		c.f.src.m.StoreErrors.WithLabelValues("save_cdc_progress").Inc()
		c.f.src.log.Warn("scylla-cdc: cannot save stream position", "stream", c.stream, "err", err)
		return
	}
	c.saved = pos
}

var (
	_ scyllacdc.ChangeConsumerFactory             = (*factory)(nil)
	_ scyllacdc.ChangeOrEmptyNotificationConsumer = (*consumer)(nil)
)
