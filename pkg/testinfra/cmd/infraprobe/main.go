// Command infraprobe tells whether the local Cassandra or Kafka really serves requests. It is the
// readiness check of deploy/local/infra.sh.
//
// Usage:
//
//	infraprobe [-timeout 5s] cassandra|kafka
//
// cassandra runs `SELECT release_version FROM system.local` against ORDERSYS_CQL_HOSTS; kafka
// sends a metadata request and looks up a consumer group coordinator (which needs the controller
// to have created the offsets topic) against ORDERSYS_KAFKA_BROKERS. Exit status 0 means ready
// (one line on stdout), 1 not ready (the reason on stderr), 2 a usage error.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ordersys/ordersys/pkg/testinfra"
)

func main() {
	timeout := flag.Duration("timeout", 5*time.Second, "bound of the whole check")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: infraprobe [-timeout d] cassandra|kafka\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "infraprobe:", err)
		os.Exit(1)
	}
}

func run(what string, timeout time.Duration) error {
	switch what {
	case "cassandra":
		hosts := testinfra.CQLHosts()
		release, err := testinfra.PingCassandra(hosts, timeout)
		if err != nil {
			return err
		}
		fmt.Printf("cassandra %s answers on %s\n", release, strings.Join(hosts, ","))
		return nil
	case "kafka":
		brokers := testinfra.KafkaBrokers()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		n, err := testinfra.PingKafka(ctx, brokers)
		if err != nil {
			return err
		}
		fmt.Printf("kafka answers on %s (%d broker(s), group coordinator ready)\n", strings.Join(brokers, ","), n)
		return nil
	default:
		return fmt.Errorf("unknown server %q (want cassandra or kafka)", what)
	}
}
