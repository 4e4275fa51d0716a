package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Timings of probes and of the stop loop.
const (
	healthCallTimeout = 3 * time.Second
	pollInterval      = 200 * time.Millisecond
	killWait          = 5 * time.Second  // how long a SIGKILLed process may take to vanish
	scriptWaitDelay   = 10 * time.Second // output of a cancelled script's leftovers
	portFreeTimeout   = 75 * time.Second // above TCP's TIME_WAIT of 60 s
)

// pidFile is where the pid of the service name is recorded.
func (s *supervisor) pidFile(name string) string { return filepath.Join(s.runDir, name+".pid") }

// marker is the path of one of the marker files in .state/run.
func (s *supervisor) marker(name string) string { return filepath.Join(s.runDir, name) }

// hasMarker reports whether the marker file name exists.
func (s *supervisor) hasMarker(name string) bool {
	_, err := os.Stat(s.marker(name))
	return err == nil
}

// setMarker creates the marker file name.
func (s *supervisor) setMarker(name string) error {
	if err := os.MkdirAll(s.runDir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(s.marker(name), nil, 0o644)
}

// pidOf returns the pid recorded for the service name if that process is alive and still runs
// the service's binary (not a later process that reused the pid).
func (s *supervisor) pidOf(name string) (int, bool) {
	pid, ok := livePid(s.pidFile(name))
	if !ok {
		return 0, false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return 0, false
	}
	if arg0, _, _ := bytes.Cut(cmdline, []byte{0}); string(arg0) != filepath.Join(s.bin, name) {
		return 0, false
	}
	return pid, true
}

// livePid returns the pid in the pid file if that process is alive.
func livePid(file string) (int, bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || !alive(pid) {
		return 0, false
	}
	return pid, true
}

// alive reports whether the process pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses, so look after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}

// waitPortFree waits until addr can be listened on. The services' ports lie in Linux's default
// ephemeral range (32768-60999): an earlier outgoing connection (to Kafka, say) that used one as
// its local port keeps it in TIME_WAIT for a minute, and a listener cannot bind it meanwhile.
func (s *supervisor) waitPortFree(ctx context.Context, addr string) error {
	deadline := time.Now().Add(portFreeTimeout)
	for said := false; ; said = true {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return ln.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still in use after %s: %w", addr, portFreeTimeout, err)
		}
		if !said {
			s.say("waiting for %s to be free (%v; an earlier connection's TIME_WAIT lasts a minute)", addr, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// startService starts svc from .state/bin in a session of its own, its output appended to
// .state/logs/<name>.log, and records its pid.
func (s *supervisor) startService(ctx context.Context, svc service) error {
	if pid, ok := s.pidOf(svc.name); ok {
		s.say("%s already running (pid %d)", svc.name, pid)
		return nil
	}
	for _, dir := range []string{s.logs, s.runDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	for _, addr := range []string{svc.grpc, svc.metrics} {
		if err := s.waitPortFree(ctx, addr); err != nil {
			return fmt.Errorf("%s: %w", svc.name, err)
		}
	}
	logPath := filepath.Join(s.logs, svc.name+".log")
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	s.say("starting %s on %s (metrics %s), log %s", svc.name, svc.grpc, svc.metrics, s.rel(logPath))
	cmd := exec.Command(filepath.Join(s.bin, svc.name))
	cmd.Env = append(os.Environ(), "ORDERSYS_GRPC_ADDR="+svc.grpc, "ORDERSYS_METRICS_ADDR="+svc.metrics)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", svc.name, err)
	}
	go cmd.Wait() // reaps it when it exits while devrun still runs
	return os.WriteFile(s.pidFile(svc.name), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
}

// stopGroup sends SIGTERM to each of the named services that runs, waits until they are gone,
// and sends SIGKILL to those still running after the stop timeout.
func (s *supervisor) stopGroup(names ...string) {
	pids := map[string]int{}
	for _, name := range names {
		if pid, ok := s.pidOf(name); ok {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			pids[name] = pid
		}
	}
	if len(pids) > 0 {
		s.say("stopping %s (SIGTERM)", strings.Join(names, " "))
		deadline := time.Now().Add(s.stopTimeout)
		for name, pid := range pids {
			for alive(pid) && time.Now().Before(deadline) {
				time.Sleep(pollInterval)
			}
			if again, ok := s.pidOf(name); ok && again == pid {
				// Checked again: the pid is still this service's binary, not a reused one.
				s.say("%s (pid %d) still running after %s: SIGKILL", name, pid, s.stopTimeout)
				_ = syscall.Kill(pid, syscall.SIGKILL)
				for end := time.Now().Add(killWait); alive(pid) && time.Now().Before(end); {
					time.Sleep(pollInterval)
				}
			}
		}
	}
	for _, name := range names {
		_ = os.Remove(s.pidFile(name))
	}
}

// health asks addr for grpc.health.v1 Health/Check of the whole server and returns its status
// (SERVING, NOT_SERVING, ...).
func (s *supervisor) health(ctx context.Context, addr string) (string, error) {
	creds := insecure.NewCredentials()
	if s.secure {
		c, err := credentials.NewClientTLSFromFile(filepath.Join(s.secrets, "ca.pem"), "")
		if err != nil {
			return "", err
		}
		creds = c
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, healthCallTimeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return "", err
	}
	return resp.GetStatus().String(), nil
}

// waitServing waits until svc answers SERVING, fails if its process exits or after the health
// timeout (with the tail of its log), or returns when ctx ends.
func (s *supervisor) waitServing(ctx context.Context, svc service) error {
	logPath := filepath.Join(s.logs, svc.name+".log")
	deadline := time.Now().Add(s.healthTimeout)
	for {
		if _, ok := s.pidOf(svc.name); !ok {
			s.tail(logPath, 30)
			return fmt.Errorf("%s exited during start-up (log %s)", svc.name, s.rel(logPath))
		}
		status, err := s.health(ctx, svc.grpc)
		if status == "SERVING" {
			s.say("%s SERVING on %s", svc.name, svc.grpc)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			s.tail(logPath, 30)
			last := status
			if err != nil {
				last = err.Error()
			}
			return fmt.Errorf("%s not SERVING after %s (last: %s; log %s)", svc.name, s.healthTimeout, last, s.rel(logPath))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// tail prints the last n lines of the file path to the error output.
func (s *supervisor) tail(path string, n int) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for _, l := range lines {
		fmt.Fprintf(s.errOut, "%s\n", l)
	}
}

// script runs one of the scripts of deploy/local with its output on devrun's. It runs in a
// process group of its own, so a Ctrl-C on the terminal reaches devrun alone; when ctx ends its
// group gets SIGTERM.
func (s *supervisor) script(ctx context.Context, name string, args ...string) error {
	return s.command(ctx, true, filepath.Join(s.scripts, name), args...).Run()
}

// quiet runs a script of deploy/local without output and reports whether it succeeded.
func (s *supervisor) quiet(ctx context.Context, name string, args ...string) bool {
	return s.command(ctx, false, filepath.Join(s.scripts, name), args...).Run() == nil
}

// command prepares a child process run from the repository root in a process group of its own
// (SIGTERM to that group when ctx ends); show puts its output on devrun's.
func (s *supervisor) command(ctx context.Context, show bool, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = s.root
	if show {
		cmd.Stdout, cmd.Stderr = s.out, s.errOut
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	cmd.WaitDelay = scriptWaitDelay
	return cmd
}
