package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/readmodel"
	"github.com/ordersys/ordersys/services/projector/internal/app"
	"github.com/ordersys/ordersys/services/projector/internal/consumer"
)

// Rebuild replays projection into a fresh table version from opts.Source and switches readers
// to it once it has caught up, printing progress to out (`projector rebuild`).
func Rebuild(ctx context.Context, cfg Config, log *slog.Logger, projection string, opts app.RebuildOptions, out io.Writer) error {
	if _, err := readmodel.ProjectionTables(projection); err != nil {
		return err
	}
	kc, err := okafka.ClusterFrom(cfg.Kafka)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	session, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer session.Close()
	d, err := adapters(kc, session, cfg.PII, consumer.NewMetrics(nil), log)
	if err != nil {
		return err
	}
	defer d.DeadLetters.Close()
	opts.Progress = func(p app.RebuildProgress) { fmt.Fprintln(out, p) }
	v, err := app.Rebuild(ctx, coreConfig(cfg), d.Deps(), projection, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "rebuild of %s done: version %d is active\n", projection, v)
	return nil
}

// Versions prints the table versions of every projection to out (`projector versions`).
func Versions(ctx context.Context, cfg Config, out io.Writer) error {
	session, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer session.Close()
	for _, p := range readmodel.Projections() {
		v, err := readmodel.LoadVersions(ctx, session, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%-10s active=%d building=%d previous=%d latest=%d switched_at=%s\n",
			p, v.Active, v.Building, v.Previous, v.Latest, v.SwitchedAt.Format(time.RFC3339))
	}
	return nil
}
