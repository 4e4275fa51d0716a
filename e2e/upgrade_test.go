package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// firstRelease is the commit of the first release (2026-11-23): the append protocol and the
// schema before issue 10's append v2 (intents in pending_appends, outbox rows written before the
// command is answered, their bucket from the writer's clock), one relay lease for the whole
// outbox (before issue 11's shards), no customer data keys. A deployment of it upgrades with
// `migrate` and a rolling restart.
const firstRelease = "f723b038277ae710479cc086024df7c6009b3863"

// upgradeLoad is how long clients drive the system before, between and after the steps of the
// upgrade.
const upgradeLoad = 4 * time.Second

// TestRollingUpgradeFromTheFirstRelease runs the first release (its own binaries, built from
// its commit) with two relay replicas under load from concurrent clients, then upgrades it as
// docs/deploy.md says, the clients going on throughout: `migrate` of this release, then one
// instance at a time, each stopped and replaced by this release's binary on the same address:
// the standby relay (the new one stays out while the old one holds the single lease: no shard
// held), the leading relay (the two new ones then share the eight shards), the command service
// (SIGKILLed, so that appends in flight leave their intents to the new recovery), the projector
// and the query service; then both projections are rebuilt from the event store (the first
// release's rows carry wall-clock write timestamps). Then every acknowledged event is in the store, every stored event
// reaches its topic with first deliveries in sequence order (duplicates counted, as consumers
// drop them by sequence), and every read model equals the replay.
func TestRollingUpgradeFromTheFirstRelease(t *testing.T) {
	base := getSystem(t)
	oldBin := buildRelease(t, firstRelease)
	s := &system{binDir: oldBin, relays: 2}
	t.Cleanup(func() {
		if t.Failed() && s.procs != nil {
			s.dumpLogs(t, 30)
		}
		if unclean := s.stop(); len(unclean) > 0 {
			t.Errorf("upgraded system: not a clean stop on SIGTERM: %s", strings.Join(unclean, "; "))
		}
	})
	if err := s.start(); err != nil {
		t.Fatalf("start the first release: %v\n%s", err, s.progress.String())
	}
	ctx := context.Background()
	led := newLedger()
	stopLoad := drive(ctx, s, led)
	stopped := false
	defer func() {
		if !stopped {
			stopLoad()
		}
	}()
	time.Sleep(upgradeLoad)

	// The upgrade: the schema, then one instance at a time.
	s.binDir = base.binDir
	if err := s.migrate(); err != nil {
		t.Fatal(err)
	}
	replace := func(name string, sig syscall.Signal) {
		t.Helper()
		p := s.procs[name]
		if sig == syscall.SIGKILL {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		} else if unclean := s.terminate(p); len(unclean) > 0 {
			t.Errorf("first release's %s: not a clean stop: %v", name, unclean)
		}
		if err := s.launch(name); err != nil {
			t.Fatal(err)
		}
		if err := s.waitServing(name); err != nil {
			t.Fatal(err)
		}
		s.logf("%s upgraded", name)
	}
	// Which old relay leads is not known: the standby is the one whose lease metric is 0.
	leader, standby := "cdc-relay", "cdc-relay-2"
	if v, _ := s.metricValue(standby, "ordersys_relay_leader"); v == 1 {
		leader, standby = standby, leader
	}
	replace(standby, syscall.SIGTERM)
	for deadline := time.Now().Add(upgradeLoad); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if v, err := s.metricValue(standby, "ordersys_relay_shards_held"); err != nil || v != 0 {
			t.Fatalf("the new relay holds %v shards (%v) while the first release's relay holds the outbox's lease", v, err)
		}
	}
	replace(leader, syscall.SIGTERM)
	if err := eventually(time.Minute, 200*time.Millisecond, func() error {
		a, err1 := s.metricValue(leader, "ordersys_relay_shards_held")
		b, err2 := s.metricValue(standby, "ordersys_relay_shards_held")
		if err1 != nil || err2 != nil || a+b != 8 || a == 0 || b == 0 {
			return fmt.Errorf("shards held: %v and %v (%v, %v), want 8 between the two", a, b, err1, err2)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	replace("command", syscall.SIGKILL)
	time.Sleep(upgradeLoad)
	replace("projector", syscall.SIGTERM)
	replace("query", syscall.SIGTERM)
	if log, err := os.ReadFile(s.procs["projector"].log); err != nil || !strings.Contains(string(log), "written by the first release") {
		t.Errorf("the upgraded projector did not say that the read models need a rebuild (%v)", err)
	}
	// The first release wrote the read models with wall-clock write timestamps, which this
	// release's version-derived ones never overwrite: rebuild them once, as docs/deploy.md says
	// (the load goes on; the switch loses nothing that arrives meanwhile).
	for _, projection := range []string{"orders", "customers"} {
		if out, code := s.ctl(t, "projector", "rebuild", "-source", "store", projection); code != 0 {
			t.Fatalf("projector rebuild -source store %s: exit %d\n%s", projection, code, out)
		}
	}
	time.Sleep(upgradeLoad)
	stopLoad()
	stopped = true
	t.Logf("upgraded under load: %d commands acknowledged (%d calls repeated), %d given up with the outcome unknown",
		led.acks, led.retries, led.unknown)
	if len(led.bad) == 0 && led.acks == 0 {
		t.Fatal("no command was acknowledged: the checks below would check nothing")
	}
	checkChaos(t, s, led)
}

// buildRelease builds the binaries of an earlier commit of this repository (git archive, then
// go build) into a temporary folder and returns it. The test is skipped when the clone does not
// hold the commit (a shallow clone).
func buildRelease(t *testing.T, commit string) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(wd)
	if out, err := exec.Command("git", "-C", root, "cat-file", "-e", commit+"^{commit}").CombinedOutput(); err != nil {
		t.Skipf("the first release (%s) is not in this clone (shallow?): %v %s", commit, err, out)
	}
	src, bin := t.TempDir(), t.TempDir()
	archive := exec.Command("sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", root, commit, src)
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("git archive %s: %v\n%s", commit, err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	start := time.Now()
	args := []string{"build", "-o", bin + string(filepath.Separator)}
	for _, name := range append(append([]string{}, serviceNames...), "migrate") {
		args = append(args, mainPackages[name])
	}
	build := exec.CommandContext(ctx, "go", args...)
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build of the release %s: %v\n%s", commit, err, out)
	}
	t.Logf("built the release %s in %s", commit[:7], time.Since(start).Round(time.Millisecond))
	return bin
}

// metricValue returns the value of an unlabelled metric of the instance name.
func (s *system) metricValue(name, metric string) (float64, error) {
	text, err := s.metrics(name)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), metric+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no metric %s on %s", metric, name)
}
