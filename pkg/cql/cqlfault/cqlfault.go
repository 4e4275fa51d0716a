// Package cqlfault puts a real TCP fault proxy (Shopify/toxiproxy v2, run in process on
// loopback) between a test's CQL session and the test Cassandra, for integration tests of what
// the append protocol does when the network misbehaves. Besides toxiproxy's own toxics (latency,
// reset_peer, timeout, …) it has one of its own, hold_batch, which holds a single CQL BATCH
// request in the proxy until the test releases it: the client times out and goes on (its SERIAL
// read passes, finding nothing) while its conditional batch is still on the way, and commits
// after — the "coordinator still retrying its CAS" case, made deterministic.
package cqlfault

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/testinfra"
)

// Proxy is a toxiproxy proxy in front of the test Cassandra.
type Proxy struct {
	*toxiproxy.Proxy
	gate *gate
}

// gate arms, holds and releases one BATCH request frame.
type gate struct {
	armed   atomic.Bool
	held    chan struct{} // closed when a batch frame is held
	release chan struct{} // closed to let it through
	once    sync.Once
}

var gates sync.Map // gate name → *gate

func init() { toxics.Register("hold_batch", new(holdBatchToxic)) }

// Start runs a proxy on 127.0.0.1 in front of the first test Cassandra host, with a hold_batch
// toxic on the client → server direction (idle until HoldNextBatch). It stops when t ends.
func Start(t testing.TB) *Proxy {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	name := uuid.NewString()
	p := &Proxy{Proxy: toxiproxy.NewProxy(srv, "cassandra-"+name, "127.0.0.1:0", testinfra.CQLHosts()[0]),
		gate: &gate{held: make(chan struct{}), release: make(chan struct{})}}
	if err := p.Start(); err != nil {
		t.Fatalf("cqlfault: start proxy: %v", err)
	}
	gates.Store(name, p.gate)
	t.Cleanup(func() {
		p.releaseHeld()
		p.Stop()
		gates.Delete(name)
	})
	p.AddToxic(t, fmt.Sprintf(`{"name":"hold","type":"hold_batch","stream":"upstream","attributes":{"gate":%q}}`, name))
	return p
}

// AddToxic adds a toxic given as toxiproxy's JSON (name, type, stream, attributes).
func (p *Proxy) AddToxic(t testing.TB, toxicJSON string) {
	t.Helper()
	if _, err := p.Toxics.AddToxicJson(strings.NewReader(toxicJSON)); err != nil {
		t.Fatalf("cqlfault: add toxic %s: %v", toxicJSON, err)
	}
}

// RemoveToxic removes a toxic by name; removing one that is not there is not an error.
func (p *Proxy) RemoveToxic(name string) { _ = p.Toxics.RemoveToxic(context.Background(), name) }

// HoldNextBatch arms the hold_batch toxic: the next complete BATCH request frame is held in the
// proxy (later frames overtake it; CQL frames on a connection are independent). held is closed
// once a frame is held; release lets it through (also called when the proxy stops). One use per
// proxy.
func (p *Proxy) HoldNextBatch() (held <-chan struct{}, release func()) {
	p.gate.armed.Store(true)
	return p.gate.held, p.releaseHeld
}

func (p *Proxy) releaseHeld() { p.gate.once.Do(func() { close(p.gate.release) }) }

// Session returns a session on keyspace whose every connection goes through the proxy (no peer
// discovery, every address translated to the proxy), with the given request timeout. It is
// closed when t ends.
func (p *Proxy) Session(t testing.TB, keyspace string, timeout time.Duration) *gocql.Session {
	t.Helper()
	host, portStr, _ := net.SplitHostPort(p.Listen)
	port, _ := strconv.Atoi(portStr)
	cfg := cqltest.SessionConfig(keyspace)
	cfg.Hosts, cfg.Timeout = []string{p.Listen}, timeout
	c, err := cql.NewCluster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.DisableInitialHostLookup = true
	c.AddressTranslator = gocql.AddressTranslatorFunc(func(net.IP, int) (net.IP, int) { return net.ParseIP(host), port })
	c.WriteCoalesceWaitTime = 0 // one write per frame, so that a frame is one chunk for the toxic
	s, err := c.CreateSession()
	if err != nil {
		t.Fatalf("cqlfault: session through the proxy: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// holdBatchToxic passes every chunk through except the first complete CQL v4 BATCH request frame
// seen while its gate is armed, which it holds until the gate is released.
type holdBatchToxic struct {
	Gate string `json:"gate"`
}

// isBatchFrame reports whether data is exactly one CQL v4 request frame with opcode BATCH.
func isBatchFrame(data []byte) bool {
	const header, opBatch, v4Request = 9, 0x0D, 0x04
	return len(data) >= header && data[0] == v4Request && data[4] == opBatch &&
		len(data) == header+int(binary.BigEndian.Uint32(data[5:9]))
}

// Pipe implements toxics.Toxic.
func (t *holdBatchToxic) Pipe(stub *toxics.ToxicStub) {
	v, _ := gates.Load(t.Gate)
	g, _ := v.(*gate)
	if g == nil { // the proxy is stopping: nothing to hold
		g = &gate{}
	}
	var held *stream.StreamChunk
	for {
		var release <-chan struct{}
		if held != nil {
			release = g.release
		}
		select {
		case <-stub.Interrupt:
			if held != nil {
				stub.Output <- held
			}
			return
		case <-release:
			stub.Output <- held
			held = nil
		case c := <-stub.Input:
			if c == nil {
				if held != nil {
					stub.Output <- held
				}
				stub.Close()
				return
			}
			if held == nil && isBatchFrame(c.Data) && g.armed.CompareAndSwap(true, false) {
				held = c
				close(g.held)
				continue
			}
			stub.Output <- c
		}
	}
}
