// Package kafkatest starts a private, single-node Apache Kafka (KRaft) for tests that must stop
// the broker (Start) or need one that speaks only TLS with SASL (StartSecure), so that the shared
// broker on 127.0.0.1:9092, which other packages' tests use at the same time, is never touched.
// It runs the jars that `make infra-up` resolved under .state/kafka/lib (or
// $INFRA_STATE_DIR/kafka/lib), on free ports, with its data in a temporary directory.
package kafkatest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/devpki"
	okafka "github.com/ordersys/ordersys/pkg/kafka"
	"github.com/ordersys/ordersys/pkg/testinfra"
)

// Broker is a private Kafka node.
type Broker struct {
	t          testing.TB
	host       string // listening address (empty: 127.0.0.1)
	dir        string
	lib        string
	log4j      string
	Port       int
	ctrlPort   int
	cmd        *exec.Cmd
	exited     chan struct{}
	startedAt  time.Time
	stdout     *bytes.Buffer
	javaBinary string
	// secure is the SASL_SSL listener's PKI (nil: a plaintext broker).
	secure *devpki.PKI
}

// Addr returns the broker's bootstrap address.
func (b *Broker) Addr() string { return fmt.Sprintf("%s:%d", b.hostOrLoopback(), b.Port) }

func (b *Broker) hostOrLoopback() string {
	if b.host == "" {
		return "127.0.0.1"
	}
	return b.host
}

// Start formats a fresh data directory and starts a plaintext broker, waiting until it answers.
// The broker is killed when t ends. The test is skipped under -short and fails when Java or the
// jars are missing (run `make infra-up` once to resolve them).
func Start(t testing.TB) *Broker {
	t.Helper()
	return start(t, false)
}

// newBroker returns a broker (not started) listening on host ("": 127.0.0.1) with its data in a
// temporary directory, after checking that Java and the jars are there; under -short it skips t.
func newBroker(t testing.TB, host string) *Broker {
	t.Helper()
	if testing.Short() {
		t.Skip("private Kafka: integration test skipped under -short")
	}
	root, err := testinfra.RepoRoot()
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	lib := filepath.Join(testinfra.StateDir(root), "kafka", "lib")
	if _, err := os.Stat(filepath.Join(lib, ".stamp")); err != nil {
		t.Fatalf("kafkatest: no Kafka jars in %s (run `make infra-up` once): %v", lib, err)
	}
	java, err := exec.LookPath("java")
	if err != nil {
		t.Fatalf("kafkatest: java not found: %v", err)
	}
	return &Broker{t: t, host: host, dir: t.TempDir(), lib: lib, log4j: filepath.Join(root, "deploy", "local", "kafka", "log4j2.xml"),
		javaBinary: java}
}

func start(t testing.TB, secure bool) *Broker {
	t.Helper()
	b := newBroker(t, "")
	b.Port, b.ctrlPort = testinfra.FreePort(t), testinfra.FreePort(t)
	listeners := fmt.Sprintf(`listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
`, b.Port, b.ctrlPort)
	var format []string
	var err error
	if secure {
		if listeners, format, err = b.secureListener(); err != nil {
			t.Fatalf("kafkatest: %v", err)
		}
	}
	props := fmt.Sprintf(`process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:%[1]d
controller.listener.names=CONTROLLER
%[3]slog.dirs=%[2]s/data
%[4]s`, b.ctrlPort, b.dir, listeners, serverProps(1))
	if err := os.WriteFile(filepath.Join(b.dir, "server.properties"), []byte(props), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(b.dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	id, err := exec.Command(b.javaBinary, append(b.jvm(), "kafka.tools.StorageTool", "random-uuid")...).Output()
	if err != nil {
		t.Fatalf("kafkatest: StorageTool random-uuid: %v", err)
	}
	args := append(b.jvm(), "kafka.tools.StorageTool", "format", "--standalone",
		"-t", strings.TrimSpace(string(id)), "-c", filepath.Join(b.dir, "server.properties"), "--ignore-formatted")
	out, err := exec.Command(b.javaBinary, append(args, format...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kafkatest: format storage: %v\n%s", err, out)
	}
	t.Cleanup(func() { b.Kill() })
	b.Restart()
	return b
}

// serverProps are the settings every private broker shares, for a cluster of n brokers
// (replication factor n, and a majority of them in sync).
func serverProps(n int) string {
	return fmt.Sprintf(`auto.create.topics.enable=false
num.partitions=3
default.replication.factor=%[1]d
min.insync.replicas=%[2]d
offsets.topic.replication.factor=%[1]d
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=%[1]d
transaction.state.log.min.isr=%[2]d
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=%[1]d
share.coordinator.state.topic.min.isr=%[2]d
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.enable=false
`, n, n/2+1)
}

func (b *Broker) jvm() []string {
	return []string{"-Xms256m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
		"-Dlog4j2.configurationFile=" + b.log4j, "-Dkafka.logs.dir=" + filepath.Join(b.dir, "logs"),
		"-Djava.awt.headless=true", "-cp", filepath.Join(b.lib, "*")}
}

// Restart starts the broker process (again) on the same ports and data, and waits until it
// serves metadata.
func (b *Broker) Restart() {
	b.t.Helper()
	b.launch()
	b.waitReady(90 * time.Second)
}

// launch starts the broker process.
func (b *Broker) launch() {
	b.t.Helper()
	if b.cmd != nil {
		b.t.Fatal("kafkatest: broker already running")
	}
	b.stdout = &bytes.Buffer{}
	cmd := exec.Command(b.javaBinary, append(b.jvm(), "kafka.Kafka", filepath.Join(b.dir, "server.properties"))...)
	cmd.Stdout, cmd.Stderr = b.stdout, b.stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL} // dies with the test process, even one that panicked on a timeout
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("kafkatest: start kafka: %v", err)
	}
	b.cmd, b.exited, b.startedAt = cmd, make(chan struct{}), time.Now()
	go func() { _ = cmd.Wait(); close(b.exited) }()
}

// waitReady waits until the broker serves metadata.
func (b *Broker) waitReady(timeout time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		err := okafka.Ping(pctx, b.ping())
		pcancel()
		if err == nil {
			b.t.Logf("kafkatest: private broker on %s ready after %s", b.Addr(), time.Since(b.startedAt).Round(time.Millisecond))
			return
		}
		select {
		case <-b.exited:
			b.t.Fatalf("kafkatest: kafka exited before answering:\n%s", b.stdout.String())
		case <-ctx.Done():
			b.Kill()
			b.t.Fatalf("kafkatest: kafka did not answer within %s: %v\n%s", timeout, err, b.stdout.String())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Kill stops the broker with SIGKILL (a crash) and waits for the process to end.
func (b *Broker) Kill() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.exited
	b.cmd = nil
}
