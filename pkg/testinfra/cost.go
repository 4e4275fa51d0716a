package testinfra

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gocql/gocql"
)

// What a benchmark's operations cost on each side: a CostMeter reports, beside a benchmark's
// throughput, the CPU milliseconds per operation of the local Cassandra process
// (cass_cpu_ms/op) and of the test process (go_cpu_ms/op), and the CQL requests per operation
// the node counted (cass_req/op), so that a change shows where it moved the cost. Cassandra and
// the test process share the host: on a CPU-bound host the throughput is the cores divided by
// the two together. Other clients of the node are counted too: run it alone (under the
// machine's benchmark lock).

// cassandraPID finds the local Cassandra process (0 when there is none, or not on Linux).
var cassandraPID = sync.OnceValue(func() int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		if b, err := os.ReadFile(d + "/cmdline"); err == nil && strings.Contains(string(b), "CassandraDaemon") {
			pid, _ := strconv.Atoi(filepath.Base(d))
			return pid
		}
	}
	return 0
})

// cassandraCPU returns the CPU time the local Cassandra process used so far (ok false when it
// cannot be read).
func cassandraCPU() (time.Duration, bool) {
	pid := cassandraPID()
	if pid == 0 {
		return 0, false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from the 3rd (state) on
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * time.Second / 100, true // USER_HZ: 100 on Linux
}

// processCPU returns the CPU time this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cqlRequests returns the requests the node counted on all its client connections so far
// (system_views.clients; ok false where there is no such table, as on ScyllaDB).
func cqlRequests(s *gocql.Session) (int64, bool) {
	if s == nil {
		return 0, false
	}
	iter := s.Query(`SELECT request_count FROM system_views.clients`).Iter()
	var n, sum int64
	for iter.Scan(&n) {
		sum += n
	}
	return sum, iter.Close() == nil
}

// CostMeter measures the CPU and the CQL requests of an interval (StartCost, then Report).
type CostMeter struct {
	session  *gocql.Session
	cass     time.Duration
	cassOK   bool
	self     time.Duration
	requests int64
	reqOK    bool
}

// StartCost starts measuring; session (nil: no request count) reads the node's request
// counters.
func StartCost(session *gocql.Session) CostMeter {
	m := CostMeter{session: session, self: processCPU()}
	m.cass, m.cassOK = cassandraCPU()
	m.requests, m.reqOK = cqlRequests(session)
	return m
}

// Report adds prefix+"go_cpu_ms/op", prefix+"cass_cpu_ms/op" and prefix+"cass_req/op" for n
// operations since StartCost.
func (m CostMeter) Report(b interface{ ReportMetric(float64, string) }, n int, prefix string) {
	perOp := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(n) }
	b.ReportMetric(perOp(processCPU()-m.self), prefix+"go_cpu_ms/op")
	if cass, ok := cassandraCPU(); ok && m.cassOK {
		b.ReportMetric(perOp(cass-m.cass), prefix+"cass_cpu_ms/op")
	}
	// The two reads of the counters are requests too, counted in the second one.
	if reqs, ok := cqlRequests(m.session); ok && m.reqOK {
		b.ReportMetric(float64(reqs-m.requests-1)/float64(n), prefix+"cass_req/op")
	}
}
