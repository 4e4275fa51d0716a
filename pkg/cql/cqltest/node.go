package cqltest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ordersys/ordersys/pkg/testinfra"
)

// node is one private Cassandra process started from the jars `make infra-up` resolved.
type node struct {
	dir  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// nodeYAML renders deploy/local/cassandra/cassandra.yaml.in for a node at addr with its state
// in dir.
func nodeYAML(t testing.TB, dir, addr string, cqlPort, storagePort int) string {
	t.Helper()
	root, err := testinfra.RepoRoot()
	if err != nil {
		t.Fatalf("cqltest: %v", err)
	}
	tmpl, err := os.ReadFile(filepath.Join(root, "deploy", "local", "cassandra", "cassandra.yaml.in"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer("@STATE@", dir, "@ADDR@", addr, "@CQL_PORT@", fmt.Sprint(cqlPort),
		"@STORAGE_PORT@", fmt.Sprint(storagePort)).Replace(string(tmpl))
}

// startNode starts Cassandra with the configuration yaml, its state in dir, and kills its
// process group when t ends. It does not wait for it to answer.
func startNode(t testing.TB, dir, yaml string, extraArgs ...string) *node {
	t.Helper()
	root, err := testinfra.RepoRoot()
	if err != nil {
		t.Fatalf("cqltest: %v", err)
	}
	lib := filepath.Join(testinfra.StateDir(root), "cassandra", "lib")
	jamm, _ := filepath.Glob(filepath.Join(lib, "jamm-*.jar"))
	if len(jamm) == 0 {
		t.Fatalf("cqltest: no Cassandra jars in %s: run make infra-up once", lib)
	}
	for _, d := range []string{"conf", "data", "commitlog", "hints", "saved_caches", "cdc_raw", "triggers", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "conf", "cassandra.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "logs", "stdout.log"))
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(root, "deploy", "local", "cassandra")
	args := []string{"@" + filepath.Join(conf, "jvm17-server.args"), "-Xms512m", "-Xmx512m",
		"-javaagent:" + jamm[0],
		"-Dcassandra.config=file://" + filepath.Join(dir, "conf", "cassandra.yaml"),
		"-Dcassandra-foreground=yes", "-Dcassandra.storagedir=" + dir, "-Dcassandra.logdir=" + filepath.Join(dir, "logs"),
		"-Dcassandra.triggers_dir=" + filepath.Join(dir, "triggers"),
		"-Dlogback.configurationFile=file://" + filepath.Join(conf, "logback.xml"),
		"-Dcassandra.skip_wait_for_gossip_to_settle=0", "-Dcassandra.superuser_setup_delay_ms=0", "-Dcassandra.skip_sync=true"}
	args = append(args, extraArgs...)
	args = append(args, "-cp", filepath.Join(lib, "*"), "org.apache.cassandra.service.CassandraDaemon")
	cmd := exec.Command("java", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL} // dies with the test process, even one that panicked on a timeout
	if err := cmd.Start(); err != nil {
		t.Fatalf("cqltest: start Cassandra: %v", err)
	}
	n := &node{dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(n.done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGCONT)
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-n.done
		_ = logf.Close()
	})
	return n
}

// exited reports whether the process has exited.
func (n *node) exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// logTail returns the last lines of the node's output.
func (n *node) logTail(lines int) string {
	out, _ := os.ReadFile(filepath.Join(n.dir, "logs", "stdout.log"))
	return tail(string(out), lines)
}
