package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ordersys/ordersys/pkg/testinfra"
)

// Bounds of the start steps.
const (
	infraProbeTimeout = 5 * time.Second
	migrateAttempts   = 6 // a fresh secure node may refuse the login for a few seconds
	migrateRetryDelay = 5 * time.Second
	watchInterval     = 2 * time.Second
)

// run starts everything, then watches the services until a signal (SIGINT, SIGTERM, SIGHUP) or a
// `make stop` elsewhere; a signal or a failed start stops what was started.
func (s *supervisor) run(ctx context.Context) error {
	ctx, stopSignals := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stopSignals() // only after the stop: a second Ctrl-C must not cut it short
	if err := s.upOrStop(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	s.help()
	what := "the four services"
	if s.hasMarker(markerJaeger) {
		what += ", Jaeger"
	}
	if s.hasMarker(markerPrometheus) {
		what += ", Prometheus"
	}
	if s.hasMarker(markerInfra) && !s.keepInfra {
		what += ", Cassandra and Kafka"
	}
	s.say("running (pid %d); Ctrl-C, SIGTERM or make stop stops %s", os.Getpid(), what)
	reported := map[string]bool{}
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.say("interrupted: stopping everything")
			s.down()
			return nil
		case <-tick.C:
		}
		left := false
		for _, svc := range s.services {
			if _, err := os.Stat(s.pidFile(svc.name)); err != nil {
				continue
			}
			left = true
			if _, ok := s.pidOf(svc.name); !ok && !reported[svc.name] {
				reported[svc.name] = true
				logPath := filepath.Join(s.logs, svc.name+".log")
				s.say("WARNING: %s exited; last lines of %s:", svc.name, s.rel(logPath))
				s.tail(logPath, 10)
			}
		}
		if !left {
			s.say("the services were stopped (make stop): done")
			return nil
		}
	}
}

// upOrStop starts everything (up); if that fails or ctx ends first, it stops what it started.
func (s *supervisor) upOrStop(ctx context.Context) error {
	err := s.up(ctx)
	switch {
	case ctx.Err() != nil:
		s.say("interrupted: stopping what was started")
		s.down()
		return errReported
	case err != nil:
		s.say("ERROR: %v", err)
		s.say("start failed: stopping what was started")
		s.down()
		return errReported
	}
	return err
}

// errReported is returned for a failure whose message was already printed.
var errReported = errors.New("reported")

// up starts Cassandra and Kafka (unless they answer), Jaeger, the build, migrate, the four
// services, then Prometheus, and returns once every service is SERVING.
func (s *supervisor) up(ctx context.Context) error {
	if err := os.MkdirAll(s.runDir, 0o755); err != nil {
		return err
	}
	// Markers of a previous run that ended without a stop (killed): none of its services runs.
	if !s.anyServiceRuns() {
		for _, m := range []string{markerInfra, markerJaeger, markerPrometheus, markerSecure} {
			_ = os.Remove(s.marker(m))
		}
	}
	// Stop only what this run started: servers already running (make infra-up, another user of
	// the same servers) are left running by the stop.
	switch {
	case s.infraAnswers(ctx) == nil:
		s.say("Cassandra and Kafka already run: used as they are, and left running on stop")
	case s.infraProcessRuns():
		// Started by someone else (make infra-up) and still starting: wait for them, and leave
		// them running on stop.
		s.say("Cassandra or Kafka is starting (started before this run): waiting, and leaving them running on stop")
		if err := s.script(ctx, "infra.sh", "up"); err != nil {
			return fmt.Errorf("infra.sh up: %w", err)
		}
	default:
		if err := s.setMarker(markerInfra); err != nil {
			return err
		}
		if err := s.script(ctx, "infra.sh", "up"); err != nil {
			return fmt.Errorf("infra.sh up: %w", err)
		}
	}
	if s.jaeger {
		if !s.quiet(ctx, "jaeger.sh", "status") {
			if err := s.setMarker(markerJaeger); err != nil {
				return err
			}
		}
		if err := s.script(ctx, "jaeger.sh", "up"); err != nil {
			return fmt.Errorf("jaeger did not start (RUN_JAEGER=0 runs without it): %w", err)
		}
		if _, set := os.LookupEnv("ORDERSYS_OTLP_ENDPOINT"); !set {
			os.Setenv("ORDERSYS_OTLP_ENDPOINT", "127.0.0.1:4317")
		}
	} else {
		s.say("RUN_JAEGER=0: spans are not exported")
		os.Setenv("ORDERSYS_OTLP_ENDPOINT", "")
	}
	// Not needed for the health checks: built now so that the grpcurl lines printed at the end
	// work at once.
	s.say("grpcurl: go tool (tools/go.mod; built once into the Go build cache, a minute or two)")
	grpcurl := s.command(ctx, false, "go", "-C", "tools", "tool", "-n", "grpcurl")
	grpcurl.Env = append(os.Environ(), "GOWORK=off")
	if out, err := grpcurl.CombinedOutput(); err != nil {
		s.say("WARNING: could not build grpcurl (GOWORK=off go -C tools tool -n grpcurl): %v\n%s", err, out)
	}
	if err := s.build(ctx); err != nil {
		return err
	}
	if err := s.piiKEK(ctx); err != nil {
		return err
	}
	if s.secure {
		if err := s.setMarker(markerSecure); err != nil {
			return err
		}
		if err := s.secureServers(ctx); err != nil {
			return err
		}
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	for _, svc := range s.services {
		if err := s.startService(ctx, svc); err != nil {
			return err
		}
	}
	for _, svc := range s.services {
		if err := s.waitServing(ctx, svc); err != nil {
			return err
		}
	}
	s.say("all four services SERVING")
	if s.prometheus {
		var targets []string
		for _, svc := range s.services {
			targets = append(targets, svc.metrics)
		}
		if !s.quiet(ctx, "prometheus.sh", "status") {
			if err := s.setMarker(markerPrometheus); err != nil {
				return err
			}
		}
		if err := s.script(ctx, "prometheus.sh", append([]string{"up"}, targets...)...); err != nil {
			return fmt.Errorf("prometheus did not start (RUN_PROMETHEUS=0 runs without it): %w", err)
		}
	}
	return ctx.Err()
}

// anyServiceRuns reports whether a service recorded in .state/run still runs.
func (s *supervisor) anyServiceRuns() bool {
	for _, svc := range s.services {
		if _, ok := s.pidOf(svc.name); ok {
			return true
		}
	}
	return false
}

// infraAnswers checks that the plaintext Cassandra and Kafka of infra.sh serve requests (the
// readiness checks of pkg/testinfra, which infraprobe runs for infra.sh).
func (s *supervisor) infraAnswers(ctx context.Context) error {
	if _, err := testinfra.PingCassandra([]string{s.infraCQL}, infraProbeTimeout); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, infraProbeTimeout)
	defer cancel()
	if _, err := testinfra.PingKafka(ctx, []string{s.infraKafka}); err != nil {
		return err
	}
	return nil
}

// infraProcessRuns reports whether a Cassandra or Kafka process that infra.sh started (its pid
// files under .state, INFRA_STATE_DIR) is alive, answering or not.
func (s *supervisor) infraProcessRuns() bool {
	state := cmp.Or(os.Getenv("INFRA_STATE_DIR"), s.state)
	_, cassandra := livePid(filepath.Join(state, "cassandra", "cassandra.pid"))
	_, kafka := livePid(filepath.Join(state, "kafka", "kafka.pid"))
	return cassandra || kafka
}

// build compiles the services, migrate and ordersysctl into .state/bin.
func (s *supervisor) build(ctx context.Context) error {
	if err := os.MkdirAll(s.bin, 0o755); err != nil {
		return err
	}
	s.say("go build command query cdc-relay projector migrate ordersysctl -> %s", s.rel(s.bin))
	start := time.Now()
	args := append([]string{"build", "-o", s.bin + string(filepath.Separator)}, binaries...)
	if err := s.command(ctx, true, "go", args...).Run(); err != nil {
		return fmt.Errorf("go build failed (see above): %w", err)
	}
	s.say("built in %ds", int(time.Since(start).Seconds()))
	return nil
}

// piiKEK points ORDERSYS_PII_KEK_FILE at a development key in .state, made once, unless the
// variable is set (set empty: personal data is not encrypted; docs/privacy.md).
func (s *supervisor) piiKEK(ctx context.Context) error {
	if _, set := os.LookupEnv("ORDERSYS_PII_KEK_FILE"); set {
		return nil
	}
	kek := filepath.Join(s.state, "pii-kek.json")
	os.Setenv("ORDERSYS_PII_KEK_FILE", kek)
	if _, err := os.Stat(kek); errors.Is(err, os.ErrNotExist) {
		if out, err := s.command(ctx, false, filepath.Join(s.bin, "ordersysctl"), "pii-kek", "new", kek).CombinedOutput(); err != nil {
			return fmt.Errorf("could not write the development KEK %s: %w\n%s", kek, err, out)
		}
	}
	s.say("personal data encrypted with the development KEK %s", s.rel(kek))
	return nil
}

// secureServers writes the development secrets, turns gRPC TLS and bearer tokens on, and starts
// the SASL_SSL Kafka and the TLS-only Cassandra whose client settings the services then use.
func (s *supervisor) secureServers(ctx context.Context) error {
	if err := s.command(ctx, true, "go", "run", "./pkg/devpki/cmd/devsecrets", "-dir", s.secrets).Run(); err != nil {
		return fmt.Errorf("devsecrets failed: %w", err)
	}
	ca := filepath.Join(s.secrets, "ca.pem")
	for k, v := range map[string]string{
		"ORDERSYS_GRPC_TLS_CERT_FILE": filepath.Join(s.secrets, "server.pem"),
		"ORDERSYS_GRPC_TLS_KEY_FILE":  filepath.Join(s.secrets, "server-key.pem"),
		"ORDERSYS_AUTH_JWKS_FILE":     filepath.Join(s.secrets, "dev.jwks.json"),
		"ORDERSYS_AUTH_ISSUER":        "https://issuer.test",
		"ORDERSYS_AUTH_AUDIENCE":      "ordersys",
		"ORDERSYS_KAFKA_TLS_CA_FILE":  ca,
		"ORDERSYS_CQL_TLS_CA_FILE":    ca,
	} {
		os.Setenv(k, v)
	}
	for _, name := range []string{"kafka-secure.sh", "cassandra-secure.sh"} {
		if err := s.script(ctx, name, "up", s.secrets); err != nil {
			return fmt.Errorf("%s up: %w", name, err)
		}
		if err := s.scriptEnv(ctx, name); err != nil {
			return err
		}
	}
	s.say("RUN_SECURE=1: gRPC TLS (CA %s) and bearer tokens on; Kafka over SASL_SSL on %s (SCRAM-SHA-512); Cassandra over TLS with a password on %s; OTLP to the local Jaeger stays plaintext",
		s.rel(ca), os.Getenv("ORDERSYS_KAFKA_BROKERS"), os.Getenv("ORDERSYS_CQL_HOSTS"))
	return nil
}

// scriptEnv takes over the ORDERSYS_* settings that `<name> env` prints as export lines: bash
// evaluates them (so the script's quoting is read by a shell) and lists its environment.
func (s *supervisor) scriptEnv(ctx context.Context, name string) error {
	cmd := s.command(ctx, false, "bash", "-c", `eval "$("$0" env)" && env -0`, filepath.Join(s.scripts, name))
	cmd.Stderr = s.errOut
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%s env: %w", name, err)
	}
	for _, kv := range bytes.Split(out, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if ok && strings.HasPrefix(k, "ORDERSYS_") && os.Getenv(k) != v {
			os.Setenv(k, v)
		}
	}
	return nil
}

// migrate creates or upgrades the keyspace (profile portable unless ORDERSYS_CQL_PROFILE says
// otherwise), retrying a few times.
func (s *supervisor) migrate(ctx context.Context) error {
	if err := os.MkdirAll(s.logs, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(s.logs, "migrate.log")
	s.say("migrate: keyspace %s (profile portable), log %s", os.Getenv("ORDERSYS_CQL_KEYSPACE"), s.rel(logPath))
	setDefault("ORDERSYS_CQL_PROFILE", "portable")
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	for try := 1; ; try++ {
		cmd := s.command(ctx, false, filepath.Join(s.bin, "migrate"))
		cmd.Stdout, cmd.Stderr = log, log
		err := cmd.Run()
		if err == nil {
			return nil
		}
		if try == migrateAttempts || ctx.Err() != nil {
			s.tail(logPath, 20)
			return fmt.Errorf("migrate failed (log %s): %w", s.rel(logPath), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(migrateRetryDelay):
		}
	}
}

// down stops the services (command and query, then cdc-relay, then projector), the secure
// servers, then Prometheus and Jaeger and Cassandra and Kafka if this run started them.
func (s *supervisor) down() {
	ctx := context.Background() // a stop is never cut short
	for _, g := range stopGroups {
		s.stopGroup(g...)
	}
	_ = s.script(ctx, "kafka-secure.sh", "down")
	_ = s.script(ctx, "cassandra-secure.sh", "down")
	_ = os.Remove(s.marker(markerSecure))
	if s.hasMarker(markerPrometheus) {
		_ = s.script(ctx, "prometheus.sh", "down")
		_ = os.Remove(s.marker(markerPrometheus))
	}
	if s.hasMarker(markerJaeger) {
		_ = s.script(ctx, "jaeger.sh", "down")
		_ = os.Remove(s.marker(markerJaeger))
	} else if s.quiet(ctx, "jaeger.sh", "status") {
		s.say("Jaeger was running before: left running (make jaeger-down stops it)")
	}
	switch {
	case !s.hasMarker(markerInfra):
		s.say("Cassandra and Kafka were running before: left running (make infra-down stops them)")
	case s.keepInfra:
		s.say("RUN_KEEP_INFRA=1: Cassandra and Kafka keep running (make infra-down stops them)")
	default:
		_ = s.script(ctx, "infra.sh", "down")
		_ = os.Remove(s.marker(markerInfra))
	}
	s.say("stopped")
}

// status prints each service's pid and health and whether Jaeger, Prometheus, Cassandra and
// Kafka answer; it reports whether everything that should run does.
func (s *supervisor) status(ctx context.Context) bool {
	s.secure = s.secure || s.hasMarker(markerSecure)
	ok := true
	for _, svc := range s.services {
		pid := "-"
		if p, running := s.pidOf(svc.name); running {
			pid = fmt.Sprint(p)
		}
		st, err := s.health(ctx, svc.grpc)
		if err != nil {
			st = "no answer"
		}
		fmt.Fprintf(s.out, "  %-10s %-22s pid %-8s health %s\n", svc.name, svc.grpc, pid, st)
		ok = ok && st == "SERVING"
	}
	if err := s.script(ctx, "jaeger.sh", "status"); err != nil && s.jaeger {
		ok = false
	}
	if s.prometheus {
		if s.quiet(ctx, "prometheus.sh", "status") {
			fmt.Fprintf(s.out, "prometheus: answers on %s\n", s.prometheusUI)
		} else {
			fmt.Fprintf(s.out, "prometheus: does not answer on %s\n", s.prometheusUI)
		}
	}
	if release, err := testinfra.PingCassandra([]string{s.infraCQL}, infraProbeTimeout); err != nil {
		fmt.Fprintf(s.out, "cassandra: not answering: %v\n", err)
		ok = false
	} else {
		fmt.Fprintf(s.out, "cassandra: %s answers on %s\n", release, s.infraCQL)
	}
	kctx, cancel := context.WithTimeout(ctx, infraProbeTimeout)
	defer cancel()
	if n, err := testinfra.PingKafka(kctx, []string{s.infraKafka}); err != nil {
		fmt.Fprintf(s.out, "kafka: not answering: %v\n", err)
		ok = false
	} else {
		fmt.Fprintf(s.out, "kafka: answers on %s (%d broker(s), group coordinator ready)\n", s.infraKafka, n)
	}
	return ok
}
