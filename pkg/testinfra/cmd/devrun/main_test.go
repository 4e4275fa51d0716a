package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestAlive(t *testing.T) {
	if !alive(os.Getpid()) {
		t.Fatal("alive(own pid) = false")
	}
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Errorf("alive(%d) = true after the process was reaped", pid)
	}
}

func TestPidOfChecksTheBinary(t *testing.T) {
	dir := t.TempDir()
	s := &supervisor{bin: filepath.Join(dir, "bin"), runDir: dir}
	// A live process that is not .state/bin/command: a pid file naming it must not count.
	if err := os.WriteFile(s.pidFile("command"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if pid, ok := s.pidOf("command"); ok {
		t.Errorf("pidOf(command) = %d, true for a process running another binary", pid)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s.bin = filepath.Dir(self)
	if err := os.WriteFile(s.pidFile(filepath.Base(self)), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	if pid, ok := s.pidOf(filepath.Base(self)); !ok || pid != os.Getpid() {
		t.Errorf("pidOf(own binary) = %d, %v; want %d, true", pid, ok, os.Getpid())
	}
}

func TestOutputFallsBackToFile(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // the reader died (a `tee` of the same Ctrl-C)
	defer w.Close()
	log := filepath.Join(t.TempDir(), "logs", "run.log")
	o := &output{w: w, fallback: log}
	for _, line := range []string{"first\n", "second\n"} {
		if n, err := o.Write([]byte(line)); err != nil || n != len(line) {
			t.Fatalf("Write(%q) = %d, %v", line, n, err)
		}
	}
	got, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "first\nsecond\n" {
		t.Errorf("fallback file holds %q", got)
	}
}

func TestServicesAddresses(t *testing.T) {
	t.Setenv("ORDERSYS_CDC_RELAY_GRPC_ADDR", "127.0.0.1:6003")
	s, err := newSupervisor(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"command": "127.0.0.1:50051 :9101", "query": "127.0.0.1:50052 :9102",
		"cdc-relay": "127.0.0.1:6003 :9103", "projector": "127.0.0.1:50054 :9104",
	}
	for name, w := range want {
		svc := s.byName[name]
		if got := svc.grpc + " " + svc.metrics; got != w {
			t.Errorf("%s: %q, want %q", name, got, w)
		}
	}
	if got := strings.Join([]string{s.services[0].name, s.services[3].name}, ","); got != "projector,command" {
		t.Errorf("start order begins and ends with %s", got)
	}
}

// TestInfraProcessRuns: servers infra.sh started (their pid files name live processes) count as
// someone else's even before they answer, so a run that finds them starting leaves them running.
func TestInfraProcessRuns(t *testing.T) {
	state := t.TempDir()
	t.Setenv("INFRA_STATE_DIR", "")
	s := &supervisor{state: state}
	if s.infraProcessRuns() {
		t.Fatal("infraProcessRuns() = true with no pid files")
	}
	dir := filepath.Join(state, "kafka")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	write := func(pid int) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "kafka.pid"), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(cmd.Process.Pid) // reaped
	if s.infraProcessRuns() {
		t.Error("infraProcessRuns() = true for a pid file of a process that ended")
	}
	write(os.Getpid())
	if !s.infraProcessRuns() {
		t.Error("infraProcessRuns() = false for a pid file of a live process")
	}
}
