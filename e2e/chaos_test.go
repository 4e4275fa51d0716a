package e2e_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ordersys/ordersys/pkg/domain/ids"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
)

// chaosDuration is how long the faults last: E2E_CHAOS_DURATION (`make chaos` sets minutes),
// else 30 s in `make test`.
func chaosDuration(t *testing.T) time.Duration {
	if v := os.Getenv("E2E_CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("E2E_CHAOS_DURATION: %v", err)
		}
		return d
	}
	return 30 * time.Second
}

// Chaos tuning: how many clients drive aggregates, how long one command may be retried (the
// command service may be stopped or restarting meanwhile), one call's deadline.
const (
	chaosClients     = 4
	chaosCallTimeout = 3 * time.Second
	chaosRetryFor    = 90 * time.Second
)

// chaosVictims are the instances the monkey kills or pauses.
var chaosVictims = []string{"command", "projector", "cdc-relay", "cdc-relay-2"}

// TestChaos runs a system with two relay replicas on a private Kafka broker while concurrent
// clients drive customers and orders through their lives with command ids (a call that fails
// with UNAVAILABLE or DEADLINE_EXCEEDED is repeated with the same command id), and a monkey
// SIGKILLs and restarts, or SIGSTOPs (sometimes past the relays' 3 s lease) and resumes, the
// command service, both relays and the projector at random, stalls or resets the connections of
// every service to Cassandra through a TCP fault proxy (chaos_network_test.go), and restarts the
// broker once (with E2E_CHAOS_CLUSTER=3, `make chaos CLUSTER=3`: no proxy, on three Cassandra
// nodes and three brokers, replication factor 3, it kills one node of each a third in and starts
// them two thirds in). Then every acknowledged event must be in the event store, every stored
// event on its topic once at least (no phantom, first deliveries in sequence order), and every
// read model equal to the state replayed from the store, each order in exactly one status list.
func TestChaos(t *testing.T) {
	base := getSystem(t)
	servers := startChaosServers(t)
	s := &system{relays: 2, binDir: base.binDir, extraEnv: []string{
		"ORDERSYS_RELAY_LEASE_TTL=3s",
		"ORDERSYS_KAFKA_PARTITIONS=3",
	}}
	servers.configure(s)
	network := startChaosNetwork(t, servers, s)
	t.Cleanup(func() {
		if t.Failed() && s.procs != nil {
			s.dumpLogs(t, 30)
		}
		for _, p := range s.procs {
			if p.running() {
				_ = p.cmd.Process.Signal(syscall.SIGCONT)
			}
		}
		// Processes killed on purpose were started again: every instance must stop cleanly.
		if unclean := s.stop(); len(unclean) > 0 {
			t.Errorf("chaos system: not a clean stop on SIGTERM: %s", strings.Join(unclean, "; "))
		}
	})
	if err := s.start(); err != nil {
		t.Fatalf("start the chaos system: %v\n%s", err, s.progress.String())
	}
	d := chaosDuration(t)
	led := newLedger()
	ctx := context.Background()
	end := time.Now().Add(d)

	var wg sync.WaitGroup
	for i := range chaosClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			(&chaosClient{s: s, led: led, rnd: rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))}).run(ctx, end)
		}()
	}
	faults := runMonkey(t, s, servers, network, end)
	wg.Wait()
	t.Logf("chaos for %s: %s; %d commands acknowledged (%d calls repeated), %d given up with the outcome unknown",
		d, strings.Join(faults, ", "), led.acks, led.retries, led.unknown)
	if led.acks == 0 {
		t.Fatal("no command was acknowledged: the checks below would check nothing")
	}
	for _, name := range s.instances() {
		if err := s.waitServing(name); err != nil {
			t.Fatal(err)
		}
	}
	checkChaos(t, s, led)
}

// ledger is what the clients were told: per aggregate, the acknowledged event ids by sequence.
type ledger struct {
	mu      sync.Mutex
	events  map[string][]string // aggregate id → event ids, index = sequence-1
	orders  []string
	acks    int
	retries int
	unknown int
	bad     []string // answers that contradict earlier ones
}

func newLedger() *ledger { return &ledger{events: map[string][]string{}} }

// ack records an acknowledged command whose events end at version; an answer that does not
// follow the aggregate's acknowledged events is recorded as bad (and the aggregate dropped).
func (l *ledger) ack(agg string, version int64, eventIDs []string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acks++
	have := l.events[agg]
	if int64(len(have))+int64(len(eventIDs)) != version {
		l.bad = append(l.bad, fmt.Sprintf("%s: acknowledged version %d with %d events after %d acknowledged", agg, version, len(eventIDs), len(have)))
		return false
	}
	l.events[agg] = append(have, eventIDs...)
	return true
}

// chaosClient drives aggregates one command at a time.
type chaosClient struct {
	s   *system
	led *ledger
	rnd *rand.Rand
}

// response is what every command RPC answers.
type response interface {
	GetVersion() int64
	GetEventIds() []string
}

// send issues one command until it is acknowledged or refused, repeating it with the same
// command id (the request is the same message) through UNAVAILABLE and DEADLINE_EXCEEDED. It
// reports whether the command was acknowledged; false means its outcome is unknown (given up)
// or it was refused, and the caller stops driving the aggregate.
func (c *chaosClient) send(ctx context.Context, agg string, call func(context.Context) (response, error)) bool {
	deadline := time.Now().Add(chaosRetryFor)
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, chaosCallTimeout)
		resp, err := call(cctx)
		cancel()
		if err == nil {
			return c.led.ack(agg, resp.GetVersion(), resp.GetEventIds())
		}
		switch status.Code(err) {
		case codes.Unavailable, codes.DeadlineExceeded:
		default:
			return false // refused: nothing to record (a rule, a conflict)
		}
		if time.Now().After(deadline) {
			c.led.mu.Lock()
			c.led.unknown++
			c.led.mu.Unlock()
			return false
		}
		c.led.mu.Lock()
		c.led.retries++
		c.led.mu.Unlock()
		time.Sleep(time.Duration(100+c.rnd.IntN(300)) * time.Millisecond)
	}
}

func (c *chaosClient) run(ctx context.Context, end time.Time) {
	for time.Now().Before(end) {
		cust := ids.New()
		req := &ordersv1.RegisterCustomerRequest{CustomerId: cust, Email: "chaos-" + randomHex(4) + "@example.com",
			FirstName: "Chaos", LastName: "Monkey", CommandId: ids.New()}
		if !c.send(ctx, cust, func(ctx context.Context) (response, error) { return c.s.customers.RegisterCustomer(ctx, req) }) {
			continue
		}
		for n := 0; n < 3 && time.Now().Before(end); n++ {
			c.order(ctx, cust)
		}
	}
}

// order drives one order along a random path: created, maybe items updated, then confirmed,
// shipped, delivered, or cancelled at some point.
func (c *chaosClient) order(ctx context.Context, cust string) {
	id := ids.New()
	create := &ordersv1.CreateOrderRequest{OrderId: id, CustomerId: cust, Items: items(c.rnd.IntN(1000)), CommandId: ids.New()}
	if !c.send(ctx, id, func(ctx context.Context) (response, error) { return c.s.orders.CreateOrder(ctx, create) }) {
		return
	}
	c.led.mu.Lock()
	c.led.orders = append(c.led.orders, id)
	c.led.mu.Unlock()
	o := c.s.orders
	// Each step builds its request once: a repeat is the same command (same id, same content).
	type call = func(context.Context) (response, error)
	steps := []func() call{
		func() call {
			r := &ordersv1.UpdateOrderItemsRequest{OrderId: id, Items: items(c.rnd.IntN(1000)), CommandId: ids.New()}
			return func(ctx context.Context) (response, error) { return o.UpdateOrderItems(ctx, r) }
		},
		func() call {
			r := &ordersv1.ConfirmOrderRequest{OrderId: id, CommandId: ids.New()}
			return func(ctx context.Context) (response, error) { return o.ConfirmOrder(ctx, r) }
		},
		func() call {
			r := &ordersv1.ShipOrderRequest{OrderId: id, TrackingNumber: "TRK" + randomHex(4), Carrier: "ups", CommandId: ids.New()}
			return func(ctx context.Context) (response, error) { return o.ShipOrder(ctx, r) }
		},
		func() call {
			r := &ordersv1.DeliverOrderRequest{OrderId: id, CommandId: ids.New()}
			return func(ctx context.Context) (response, error) { return o.DeliverOrder(ctx, r) }
		},
	}
	cancelAt := c.rnd.IntN(len(steps) + 2) // at len(steps) or after: never cancelled
	for i, step := range steps {
		if i == cancelAt {
			r := &ordersv1.CancelOrderRequest{OrderId: id, Reason: "chaos", CommandId: ids.New()}
			c.send(ctx, id, func(ctx context.Context) (response, error) { return o.CancelOrder(ctx, r) })
			return
		}
		if !c.send(ctx, id, step()) {
			return
		}
	}
}

// runMonkey injects faults until end and returns what it did: a process killed or paused, now
// and then (network not nil) a network fault instead, and the servers' faults at their stages.
func runMonkey(t *testing.T, s *system, servers chaosServers, network *chaosNetwork, end time.Time) []string {
	rnd := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	counts := map[string]int{}
	d := time.Until(end)
	stages := []time.Time{time.Now().Add(d / 3), time.Now().Add(2 * d / 3)}
	stage := 0
	for time.Now().Before(end) {
		time.Sleep(time.Duration(1500+rnd.IntN(1500)) * time.Millisecond)
		if stage < len(stages) && time.Now().After(stages[stage]) {
			if did := servers.serverFault(stage); did != "" {
				counts[did]++
			}
			stage++
			continue
		}
		if network != nil && rnd.IntN(4) == 0 {
			counts[network.fault(t, s, rnd)]++
			continue
		}
		victim := chaosVictims[rnd.IntN(len(chaosVictims))]
		p := s.procs[victim]
		if rnd.IntN(2) == 0 {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
			time.Sleep(time.Duration(200+rnd.IntN(1500)) * time.Millisecond)
			if err := s.launch(victim); err != nil {
				t.Errorf("restart %s: %v", victim, err)
				return nil
			}
			counts["SIGKILL "+victim]++
			continue
		}
		pause := time.Duration(500+rnd.IntN(4000)) * time.Millisecond // sometimes past the 3 s lease
		_ = p.cmd.Process.Signal(syscall.SIGSTOP)
		time.Sleep(pause)
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		counts["SIGSTOP "+victim]++
	}
	for ; stage < len(stages); stage++ { // a short run still restores its servers
		if did := servers.serverFault(stage); did != "" {
			counts[did]++
		}
	}
	var out []string
	for k, n := range counts {
		out = append(out, fmt.Sprintf("%s ×%d", k, n))
	}
	sort.Strings(out)
	return out
}
