package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/ordersys/ordersys/pkg/testinfra"
)

// stop ends the services (SIGTERM; SIGKILL after stopTimeout), then Jaeger, and drops the keyspace.
// It returns what did not stop cleanly.
func (s *system) stop() (unclean []string) {
	for _, c := range s.conns {
		_ = c.Close()
	}
	relays := []string{}
	for _, name := range s.instances() {
		if binaryOf(name) == "cdc-relay" {
			relays = append(relays, name)
		}
	}
	for _, group := range [][]string{{"command", "query"}, relays, {"projector"}} {
		var ps []*process
		for _, name := range group {
			if p := s.procs[name]; p != nil {
				ps = append(ps, p)
			}
		}
		unclean = append(unclean, s.terminate(ps...)...)
	}
	if s.jaeger != nil {
		s.terminate(s.jaeger) // not ours: its exit status is reported, not judged
	}
	if s.keyspace != "" && s.secure == nil && (s.cql == nil || s.cqlProxy) && os.Getenv("E2E_KEEP") != "1" { // private servers die with their test
		s.dropKeyspace()
		s.deleteTopics()
	}
	if s.builtBin {
		_ = os.RemoveAll(s.binDir) // ~150 MB per run; the build cache makes the next build cheap
	}
	liveRuns.Delete(filepath.Base(s.runDir))
	pruneRuns(filepath.Dir(s.runDir), keepRuns)
	fmt.Fprintf(os.Stderr, "e2e: logs of this run: %s\n", rel(s.root, s.runDir))
	return unclean
}

// terminate sends SIGTERM to every running process of ps, waits up to stopTimeout for each, then
// SIGKILLs its process group. It returns the processes that did not exit with status 0 in time
// (one that had exited before is reported too).
func (s *system) terminate(ps ...*process) (unclean []string) {
	for _, p := range ps {
		if p.running() {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(stopTimeout)
	for _, p := range ps {
		select {
		case <-p.done:
			if p.err != nil {
				fmt.Fprintf(os.Stderr, "e2e: %s exited after SIGTERM with %v\n", p.name, p.err)
				unclean = append(unclean, fmt.Sprintf("%s: %v", p.name, p.err))
			}
		case <-time.After(time.Until(deadline)):
			fmt.Fprintf(os.Stderr, "e2e: %s still running %s after SIGTERM: SIGKILL\n", p.name, stopTimeout)
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
			unclean = append(unclean, fmt.Sprintf("%s: still running %s after SIGTERM", p.name, stopTimeout))
		}
	}
	return unclean
}

func (s *system) dropKeyspace() {
	c := testinfra.Cluster(testinfra.CQLHosts(), "")
	c.Timeout = time.Minute
	session, err := c.CreateSession()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: drop keyspace %s: %v\n", s.keyspace, err)
		return
	}
	defer session.Close()
	if err := session.Query("DROP KEYSPACE IF EXISTS " + s.keyspace).Exec(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: drop keyspace %s: %v\n", s.keyspace, err)
	}
}

// deleteTopics deletes this run's topics and their dead-letter topics (the relay's <topic>.dlq,
// the projector's <topic>.projector.dlq); a topic that was never created is no error.
func (s *system) deleteTopics() {
	var names []string
	for _, t := range s.topics {
		names = append(names, t, t+".dlq", t+".projector.dlq")
	}
	sort.Strings(names)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := &kafkago.Client{Addr: kafkago.TCP(s.brokers...), Transport: &kafkago.Transport{}}
	resp, err := client.DeleteTopics(ctx, &kafkago.DeleteTopicsRequest{Topics: names})
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: delete topics %v: %v\n", names, err)
		return
	}
	for name, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafkago.UnknownTopicOrPartition) {
			fmt.Fprintf(os.Stderr, "e2e: delete topic %s: %v\n", name, err)
		}
	}
}
