// Command devrun runs the whole ordersys system on this machine as plain processes: Cassandra
// and Kafka (deploy/local/infra.sh), Jaeger (deploy/local/jaeger.sh), the schema (migrate), the
// four services (command, query, cdc-relay, projector) and Prometheus
// (deploy/local/prometheus.sh). deploy/local/run.sh builds it into .state/bin and runs it; the
// make targets run, run-secure, run-detached, stop and run-status call that script.
//
// Usage:
//
//	devrun [-root DIR] run|up|down|status|build|help
//
//	run     start everything in the foreground; SIGINT, SIGTERM or SIGHUP stops what it started
//	up      start everything and return once every service answers grpc.health.v1 SERVING
//	down    stop what run or up started: the services (SIGTERM, then SIGKILL after
//	        RUN_STOP_TIMEOUT), Prometheus, Jaeger, then Cassandra and Kafka if the run started them
//	status  each service's pid and gRPC health, Jaeger's, Prometheus's and the servers' state
//	build   only go build the services, migrate and ordersysctl into .state/bin
//	help    how to call the services (grpcurl lines) and where to look
//
// What runs is recorded in .state/run: a pid file per service and a marker file for each of
// Cassandra/Kafka, Jaeger and Prometheus that this run started (what already ran before is left
// running on stop). The services run in sessions of their own, so a Ctrl-C on the terminal
// reaches only devrun, which stops them in order. signal.Notify re-enables a SIGINT that was
// ignored when devrun started (a background job of a shell without job control).
//
// Environment (defaults in brackets): ORDERSYS_CQL_KEYSPACE [ordersys], RUN_KEEP_INFRA [0],
// RUN_STOP_TIMEOUT [20] s, RUN_HEALTH_TIMEOUT [120] s per service, RUN_JAEGER [1],
// RUN_PROMETHEUS [1], RUN_SECURE [0] (make run-secure: gRPC TLS, bearer tokens, Kafka over
// SASL_SSL and Cassandra over TLS with the development secrets of pkg/devpki/cmd/devsecrets),
// ORDERSYS_PII_KEK_FILE [.state/pii-kek.json, made once; empty: none],
// ORDERSYS_<SERVICE>_GRPC_ADDR and _METRICS_ADDR (per service), INFRA_ADDR, INFRA_CQL_PORT,
// INFRA_KAFKA_PORT, and every ORDERSYS_* of docs/configuration.md, which the services inherit.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ordersys/ordersys/pkg/testinfra"
)

func main() {
	root := flag.String("root", "", "repository root (default: the directory holding go.work above the working directory)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: devrun [-root DIR] run|up|down|status|build|help")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if *root == "" {
		r, err := testinfra.RepoRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, "devrun:", err)
			os.Exit(2)
		}
		*root = r
	}
	// A reader of the output (`make run | tee log`) may die of the same Ctrl-C: with SIGPIPE
	// notified, writes fail with EPIPE instead of killing devrun, and the output moves to
	// .state/logs/run.log (see output).
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)

	s, err := newSupervisor(*root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devrun:", err)
		os.Exit(2)
	}
	os.Exit(s.main(flag.Arg(0)))
}

// main runs one subcommand and returns the exit status.
func (s *supervisor) main(cmd string) int {
	ctx := context.Background()
	var err error
	switch cmd {
	case "run":
		err = s.run(ctx)
	case "up":
		// A start interrupted by a signal stops what it had started, as in run.
		sigCtx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
		if err = s.upOrStop(sigCtx); err == nil {
			s.help()
		}
		stop()
	case "down":
		s.down()
	case "status":
		if !s.status(ctx) {
			return 1
		}
	case "build":
		err = s.build(ctx)
	case "help":
		s.help()
	default:
		fmt.Fprintf(os.Stderr, "usage: devrun run|up|down|status|build|help (not %q)\n", cmd)
		return 2
	}
	if err != nil {
		if !errors.Is(err, errReported) {
			s.say("ERROR: %v", err)
		}
		return 1
	}
	return 0
}
