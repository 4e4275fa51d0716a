package bootstrap

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/ordersys/ordersys/pkg/config"
	"github.com/ordersys/ordersys/pkg/grpcx"
)

// Main is the main function of a service binary: it answers --help and --version
// (config.InfoRequested, listing the variables of defaults, a pointer to the configuration
// before the environment is read), otherwise calls run with the arguments and a context that
// ends on SIGINT or SIGTERM, and exits with status 1 and the error on stderr when run fails.
func Main(service, usage string, defaults any, run func(ctx context.Context, args []string, stdout io.Writer) error) {
	if config.InfoRequested(os.Args[1:], os.Stdout, service, usage, defaults) {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", service, err)
		os.Exit(1)
	}
}

// Config is what every service's configuration offers: the settings all share (config.Common,
// embedded) and a check of its own values.
type Config interface {
	// Shared returns the settings every service shares.
	Shared() config.Common
	// Validate checks the values that have no sensible meaning when out of range.
	Validate() error
}

// LoadConfig fills cfg (the service's defaults) from the environment and validates it.
func LoadConfig[C Config](cfg C) (C, error) {
	if err := config.Load(&cfg); err != nil {
		return cfg, fmt.Errorf("configuration: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("configuration: %w", err)
	}
	return cfg, nil
}

// Serve runs a service process: Start (logging, the "starting" line, tracing), run with the
// process's logger on the configured addresses until ctx ends, then Stop.
func Serve[C Config](ctx context.Context, service string, cfg C, run func(context.Context, C, *slog.Logger, Listeners) error) error {
	proc, err := Start(ctx, service, cfg.Shared(), cfg)
	if err != nil {
		return err
	}
	defer proc.Stop(ctx)
	return run(ctx, cfg, proc.Log, Listeners{})
}

// NewServer builds a service's gRPC server with build (given its logger, metrics registry,
// shutdown timeout and the security of sec, whose files it loads),
// binds its listener (l.GRPC, or the configured address) and makes /readyz answer its overall
// health.
func NewServer(service string, common config.Common, sec config.GRPCServer, m Metrics, log *slog.Logger, l Listeners,
	build func(grpcx.ServerOptions) *grpcx.Server) (*grpcx.Server, net.Listener, error) {
	opts, err := serverOptions(service, common, sec, m, log)
	if err != nil {
		return nil, nil, err
	}
	srv := build(opts)
	ln, err := l.GRPCListener(common.GRPCAddr)
	if err != nil {
		return nil, nil, err
	}
	m.Ready.Set(srv.Ready)
	return srv, ln, nil
}

// ServeFunc is the run function (for Main) of a binary that only serves: it reads the
// configuration over defaults() (LoadConfig) and serves it with run (Serve); arguments are
// ignored.
func ServeFunc[C Config](service string, defaults func() C, run func(context.Context, C, *slog.Logger, Listeners) error) func(context.Context, []string, io.Writer) error {
	return func(ctx context.Context, _ []string, _ io.Writer) error {
		cfg, err := LoadConfig(defaults())
		if err != nil {
			return err
		}
		return Serve(ctx, service, cfg, run)
	}
}

// Server is a service built and bound, ready to serve until its context ends.
type Server interface {
	// Serve serves until ctx ends, then stops gracefully.
	Serve(ctx context.Context) error
}

// Run builds a service with build (its New) and serves it until ctx ends: the Run of a
// service whose component tests call the two halves.
func Run[C any, S Server](ctx context.Context, cfg C, log *slog.Logger, lns Listeners,
	build func(context.Context, C, *slog.Logger, Listeners) (S, error)) error {
	s, err := build(ctx, cfg, log, lns)
	if err != nil {
		return err
	}
	return s.Serve(ctx)
}
