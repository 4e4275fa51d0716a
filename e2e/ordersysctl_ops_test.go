package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/testinfra"
)

// opsRelayMaxBytes is the relay's ORDERSYS_KAFKA_MAX_MESSAGE_BYTES in TestOrdersysctlOperations:
// an order of 100 lines (about 5 KB) is larger, every other event smaller.
const opsRelayMaxBytes = 3072

// TestOrdersysctlOperations runs, through the real ordersysctl binary (and the relay's and
// projector's own subcommands next to the database), the documented commands TestOrdersysctl
// does not: the relay's and the projector's dead letters (list with every filter and paging,
// show, redrive refused and done once the cause is fixed, discard), following a rebuild from
// another command, aborting one, dropping the aborted version, the versions, a resumable
// republish. It seeds what they need: a poison outbox row and an order over the relay's size
// limit (relay), an undecodable message and an unreadable read-model row (projector). Every
// step checks the output and the documented exit code.
//
// It runs on a system of its own (same binaries as the shared one): the poison flips the
// services' ordersys.decoding health and counts undecodable events, which TestEdgeContract
// requires to stay clean on the shared system, and it restarts the relay.
func TestOrdersysctlOperations(t *testing.T) {
	base := getSystem(t)
	s := &system{binDir: base.binDir, extraEnv: []string{"ORDERSYS_KAFKA_MAX_MESSAGE_BYTES=" + strconv.Itoa(opsRelayMaxBytes)}}
	t.Cleanup(func() {
		if t.Failed() && s.procs != nil {
			s.dumpLogs(t, 40)
		}
		if unclean := s.stop(); len(unclean) > 0 {
			t.Errorf("operations system: not a clean stop on SIGTERM: %s", strings.Join(unclean, "; "))
		}
	})
	if err := s.start(); err != nil {
		t.Fatalf("start the system: %v\n%s", err, s.progress.String())
	}
	session, err := testinfra.Cluster(s.cqlHosts(), s.keyspace).CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	customer := ids.New()
	if _, err := s.customers.RegisterCustomer(ctx, &ordersv1.RegisterCustomerRequest{CustomerId: customer,
		Email: "ops-" + customer[:8] + "@example.com", FirstName: "Op", LastName: "Erator"}); err != nil {
		t.Fatal(err)
	}
	o := &ops{t: t, s: s, ctx: ctx, session: session, customer: customer}

	t.Run("relay_dead_letters", func(t *testing.T) { o.with(t).relayDeadLetters() })
	t.Run("projector_dead_letters", func(t *testing.T) { o.with(t).projectorDeadLetters() })
	t.Run("rebuilds", func(t *testing.T) { o.with(t).rebuilds() })
	t.Run("republish", func(t *testing.T) { o.with(t).republish() })
	s.checkAlive(t)
}

// republish re-publishes the whole event store into the live topics under a job name, runs the
// same job again (it resumes: done at once), and refuses a republish without a job or ids.
func (o *ops) republish() {
	for _, run := range []string{"first run", "same job again"} {
		out := o.expect(0, "done", "republish", "-job", "ops-refill", "-rate", "2000")
		if !regexp.MustCompile(`100\.0%\s+\d+ aggregates\s+\d+ events .* done`).MatchString(out) {
			o.t.Errorf("republish -job ops-refill (%s) did not finish the ring:\n%s", run, out)
		}
	}
	o.expect(2, "-job", "republish", "-rate", "10")
}

// rebuilds: `projector versions` next to the database; a rebuild of customers followed by
// `projector watch-rebuild` to its switch; a rebuild of orders aborted (readers never switch to
// it) and its version dropped; drop-version refusals.
func (o *ops) rebuilds() {
	t := o.t
	versions := o.projectorVersions()
	for _, p := range []string{"orders", "customers"} {
		if !regexp.MustCompile(`(?m)^` + p + `\s+active=1 building=0 previous=0 latest=1 `).MatchString(versions) {
			t.Fatalf("projector versions of a fresh system:\n%s", versions)
		}
	}

	rebuild := o.ctlStart("projector", "rebuild", "-source", "store", "customers")
	v := o.waitBuilding("customers")
	switched := fmt.Sprintf("customers v%d: caught up, readers switched to it", v)
	o.expect(0, switched, "projector", "watch-rebuild", "customers")
	if out, code := rebuild.wait(t); code != 0 || !strings.Contains(out, "event store 100.0%") || !strings.Contains(out, switched) {
		t.Errorf("projector rebuild -source store customers (followed by watch-rebuild): exit %d\n%s", code, out)
	}
	if st := o.status("customers"); st.Active != v || st.Previous != 1 || st.Building != 0 {
		t.Errorf("customers after the rebuild: %+v, want v%d active, v1 previous", st, v)
	}

	// Abort a rebuild of orders before it switches. A rebuild of a small store can switch in
	// about two seconds: should it have switched before the abort, start another.
	aborted := 0
	for attempt := 1; aborted == 0; attempt++ {
		rebuild := o.ctlStart("projector", "rebuild", "-source", "store", "orders")
		v := o.waitBuilding("orders")
		out, code := o.s.ctl(t, "projector", "abort-rebuild", "orders")
		bgOut, bgCode := rebuild.wait(t)
		switch {
		case code == 0:
			if !strings.Contains(out, fmt.Sprintf("aborted the rebuild of orders version %d", v)) {
				t.Fatalf("projector abort-rebuild orders: %s", out)
			}
			if bgCode != 1 || strings.Contains(bgOut, "readers switched") {
				t.Fatalf("the aborted rebuild: exit %d, want 1 (failed precondition) and no switch\n%s", bgCode, bgOut)
			}
			aborted = v
		case code == 1 && strings.Contains(out, "no rebuild of orders runs") && attempt < 3:
			t.Logf("rebuild of orders v%d switched before the abort; again", v)
		default:
			t.Fatalf("projector abort-rebuild orders (attempt %d): exit %d\n%s", attempt, code, out)
		}
	}
	st := o.status("orders")
	if st.Building != 0 || st.Active == aborted || st.Latest != aborted {
		t.Fatalf("orders after the abort of v%d: %+v", aborted, st)
	}
	o.waitNoConsumers("orders", aborted)
	o.expect(0, fmt.Sprintf("dropped order_read_model_v%d, ", aborted), "projector", "drop-version", "orders", strconv.Itoa(aborted))
	o.expect(3, "were allocated", "projector", "drop-version", "orders", "99")
	o.expect(1, "it is the active version", "projector", "drop-version", "customers", strconv.Itoa(v))
	versions = o.projectorVersions()
	for _, want := range []string{fmt.Sprintf(`(?m)^orders\s+active=%d building=0 .*latest=%d `, st.Active, aborted),
		fmt.Sprintf(`(?m)^customers\s+active=%d building=0 previous=1 latest=%d `, v, v)} {
		if !regexp.MustCompile(want).MatchString(versions) {
			t.Errorf("projector versions: no line matching %s\n%s", want, versions)
		}
	}
	o.expect(0, "LAG AGE", "projector", "status")
}

// ops holds what the steps of TestOrdersysctlOperations share.
type ops struct {
	t        *testing.T
	s        *system
	ctx      context.Context
	session  *gocql.Session
	customer string
}

// with returns the steps' state for the subtest t.
func (o *ops) with(t *testing.T) *ops {
	c := *o
	c.t = t
	return &c
}

// expect runs ordersysctl with args, fails the test unless it exits with code and its output
// contains want, and returns the output.
func (o *ops) expect(code int, want string, args ...string) string {
	o.t.Helper()
	out, got := o.s.ctl(o.t, args...)
	if got != code || !strings.Contains(out, want) {
		o.t.Fatalf("ordersysctl %s: exit %d, want %d and %q in the output:\n%s", strings.Join(args, " "), got, code, want, out)
	}
	return out
}

// deadLetter is a dead letter as `-o json dlq list` and `projector-dlq list` print it.
type deadLetter struct {
	ID          string  `json:"id"`
	Topic       string  `json:"topic"`
	AggregateID string  `json:"aggregateId"`
	Reason      string  `json:"reason"`
	RedrivenAt  *string `json:"redrivenAt"`
}

// deadLetters runs `-o json <group> list args...` and returns its page and next-page token.
func (o *ops) deadLetters(group string, args ...string) ([]deadLetter, string) {
	o.t.Helper()
	out := o.expect(0, "deadLetters", append([]string{"-o", "json", group, "list"}, args...)...)
	var res struct {
		DeadLetters   []deadLetter `json:"deadLetters"`
		NextPageToken string       `json:"nextPageToken"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		o.t.Fatalf("%s list %v -o json: %v\n%s", group, args, err, out)
	}
	return res.DeadLetters, res.NextPageToken
}

// reMore finds the next-page token a table list prints.
var reMore = regexp.MustCompile(`(?m)^more: (\S+) list -page (\S+) \(same filters\)$`)

// pages lists group's dead letters one at a time with the table output, following the printed
// next-page token, and returns the ids in the order listed.
func (o *ops) pages(group string, filters ...string) []string {
	o.t.Helper()
	var got []string
	token := ""
	for range 10 {
		args := append(append([]string{group, "list"}, filters...), "-limit", "1")
		if token != "" {
			args = append(args, "-page", token)
		}
		out := o.expect(0, "REASON", args...)
		got = append(got, reID.FindAllString(out, -1)...)
		m := reMore.FindStringSubmatch(out)
		if m == nil {
			return got
		}
		if m[1] != group {
			o.t.Fatalf("%s list prints the next page as %q", group, m[0])
		}
		token = m[2]
	}
	o.t.Fatalf("%s list -limit 1: more than 10 pages: %v", group, got)
	return nil
}

// reID finds the dead-letter ids (time UUIDs, version 1) at the start of table lines.
var reID = regexp.MustCompile(`(?m)^[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}\b`)

// projectorVersions runs `projector versions` next to the database (the projector binary).
func (o *ops) projectorVersions() string {
	o.t.Helper()
	cmd := exec.CommandContext(o.ctx, filepath.Join(o.s.binDir, "projector"), "versions")
	cmd.Env = o.s.serviceEnv("projector")
	out, err := cmd.CombinedOutput()
	if err != nil {
		o.t.Fatalf("projector versions: %v\n%s", err, out)
	}
	return string(out)
}

// projection is a projection's versions as `-o json projector status` prints them.
type projection struct {
	Projection                         string
	Active, Building, Previous, Latest int
}

// status returns the versions of projection p from `-o json projector status`.
func (o *ops) status(p string) projection {
	o.t.Helper()
	out := o.expect(0, "projections", "-o", "json", "projector", "status")
	var st struct{ Projections []projection }
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		o.t.Fatalf("projector status -o json: %v\n%s", err, out)
	}
	for _, pr := range st.Projections {
		if pr.Projection == p {
			return pr
		}
	}
	o.t.Fatalf("projector status has no %s:\n%s", p, out)
	return projection{}
}

// waitBuilding polls the status until a version of p is being built and returns it.
func (o *ops) waitBuilding(p string) int {
	o.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if st := o.status(p); st.Building != 0 {
			return st.Building
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("no rebuild of %s shows in projector status a minute after it started", p)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitNoConsumers waits until the projector consumes nothing for version v of p any more (no
// ordersys_projector_lag_seconds series of it), so that its tables can go.
func (o *ops) waitNoConsumers(p string, v int) {
	o.t.Helper()
	series := regexp.MustCompile(`(?m)^ordersys_projector_lag_seconds\{[^}]*projection="` + p + `"[^}]*version="` + strconv.Itoa(v) + `"`)
	err := eventually(30*time.Second, 500*time.Millisecond, func() error {
		page, err := o.s.metrics("projector")
		if err == nil && series.MatchString(page) {
			err = fmt.Errorf("%w: the projector still consumes for %s v%d", errNotYet, p, v)
		}
		return err
	})
	if err != nil {
		o.t.Fatal(err)
	}
}

// bgRun is an ordersysctl command running in the background.
type bgRun struct {
	out  bytes.Buffer
	done chan struct{}
	err  error
}

// ctlStart starts ordersysctl with args in the background.
func (o *ops) ctlStart(args ...string) *bgRun {
	o.t.Helper()
	ctx, cancel := context.WithTimeout(o.ctx, 3*time.Minute)
	all := append([]string{"-relay", o.s.grpcAddr["cdc-relay"], "-query", o.s.grpcAddr["query"], "-projector", o.s.grpcAddr["projector"]}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(o.s.binDir, "ordersysctl"), all...)
	r := &bgRun{done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &r.out, &r.out
	if err := cmd.Start(); err != nil {
		cancel()
		o.t.Fatalf("ordersysctl %v: %v", args, err)
	}
	go func() {
		r.err = cmd.Wait()
		cancel()
		close(r.done)
	}()
	o.t.Cleanup(func() { <-r.done })
	return r
}

// wait returns the command's output and exit code once it ended.
func (r *bgRun) wait(t *testing.T) (string, int) {
	t.Helper()
	<-r.done
	var ee *exec.ExitError
	switch {
	case r.err == nil:
		return r.out.String(), 0
	case errors.As(r.err, &ee):
		return r.out.String(), ee.ExitCode()
	}
	t.Fatalf("ordersysctl: %v\n%s", r.err, r.out.String())
	return "", -1
}
