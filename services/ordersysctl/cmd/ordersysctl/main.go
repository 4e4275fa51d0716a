// Command ordersysctl is the operators' command line for a running ordersys:
//
//	ordersysctl relay status
//	ordersysctl dlq list [-topic T] [-limit N]
//	ordersysctl dlq show|redrive|discard [-topic T] ID
//	ordersysctl projector status
//	ordersysctl projector abort-rebuild PROJECTION
//	ordersysctl projector rebuild [-source topics|store] PROJECTION
//	ordersysctl projector watch-rebuild PROJECTION
//	ordersysctl projector switch-back PROJECTION
//	ordersysctl projector drop-version PROJECTION VERSION
//	ordersysctl projector-dlq list|show|redrive|discard ...
//	ordersysctl order get ID
//	ordersysctl order history [-limit N] ID
//	ordersysctl republish -job J [-topic T] [-rate N] [AGGREGATE_ID...]
//
// Global flags (before the command) name the services and the TLS and token settings; -o json
// prints protobuf JSON for scripts. Exit codes: 0 done, 1 failed, 2 bad usage or input, 3 not
// found, 4 not allowed (no or wrong token), 5 a service is unavailable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/ordersys/ordersys/pkg/buildinfo"
	"github.com/ordersys/ordersys/pkg/grpcx"
)

// Exit codes.
const (
	exitOK = iota
	exitFailed
	exitUsage
	exitNotFound
	exitDenied
	exitUnavailable
)

const usage = `usage: ordersysctl [flags] <command> [args]

commands:
  relay status                              the relay replica: shards it publishes, breaker, lag,
                                            checkpoint age per cursor, counters
  dlq list [-topic T] [-aggregate ID] [-reason TEXT] [-since T] [-until T] [-limit N] [-page TOKEN]
                                            dead letters of the relay (every event topic by default),
                                            filtered, a page at a time (T: RFC 3339 or a duration ago)
  dlq show|redrive|discard [-topic T] ID    one dead letter: its bytes / publish it again / delete it
  projector status                          the projections' versions (active, building, previous)
                                            and each version's position, lag and rate on the topics
  projector rebuild [-source topics|store] PROJECTION
                                            rebuild a projection (orders, customers) into a new version,
                                            from the event store (default) or the topics, with a
                                            progress bar on a terminal; it runs
                                            in the projector and switches readers once caught up
  projector watch-rebuild PROJECTION        follow the rebuild a projector runs
  projector abort-rebuild PROJECTION        stop filling the version a rebuild builds (orders, customers)
  projector switch-back PROJECTION          make the previous version active again (while still written)
  projector drop-version PROJECTION N       drop the tables of a version nothing uses
  projector-dlq list|show|redrive|discard   the projector's dead letters, as dlq does the relay's
                                            (re-driven to the event topic; -topic is the event topic)
  order get ID                              an order's read model (query service)
  order history [-limit N] ID               an order's events (query service)
  republish -job J [-topic T] [-rate N] [ID...]
                                            publish the event store again (every aggregate, resumable
                                            by job, or the given ones), with progress
  pii-kek new|rotate|drop-old FILE          write a key-encryption key file for personal data
                                            (ORDERSYS_PII_KEK_FILE): a new one, a new primary key
                                            added, the old keys dropped (docs/privacy.md)
  version                                   this build

flags:`

// options are the global flags.
type options struct {
	relay, query, projector   string
	caFile, certFile, keyFile string
	tokenFile, output         string
	insecureToken             bool
	timeout                   time.Duration
	stdout, stderr            io.Writer
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run executes one command and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	o := options{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("ordersysctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, usage); fs.PrintDefaults() }
	fs.StringVar(&o.relay, "relay", env("ORDERSYSCTL_RELAY", "127.0.0.1:50053"), "cdc-relay gRPC address (ORDERSYSCTL_RELAY)")
	fs.StringVar(&o.projector, "projector", env("ORDERSYSCTL_PROJECTOR", "127.0.0.1:50054"), "projector gRPC address (ORDERSYSCTL_PROJECTOR)")
	fs.StringVar(&o.query, "query", env("ORDERSYSCTL_QUERY", "127.0.0.1:50052"), "query service gRPC address (ORDERSYSCTL_QUERY)")
	fs.StringVar(&o.caFile, "ca", env("ORDERSYSCTL_CA_FILE", ""), "CA certificates (PEM) to trust: set, the calls use TLS (ORDERSYSCTL_CA_FILE)")
	fs.StringVar(&o.certFile, "cert", env("ORDERSYSCTL_CERT_FILE", ""), "client certificate (PEM) for mutual TLS (ORDERSYSCTL_CERT_FILE)")
	fs.StringVar(&o.keyFile, "key", env("ORDERSYSCTL_KEY_FILE", ""), "client key (PEM) for mutual TLS (ORDERSYSCTL_KEY_FILE)")
	fs.StringVar(&o.tokenFile, "token-file", env("ORDERSYSCTL_TOKEN_FILE", ""), "file holding the bearer token (ORDERSYSCTL_TOKEN_FILE)")
	fs.BoolVar(&o.insecureToken, "insecure-token", false, "send the token over a plaintext connection (no -ca): only for a developer machine")
	fs.StringVar(&o.output, "o", "table", "output: table or json")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "deadline of each call")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	rest := fs.Args()
	if len(rest) == 0 || (o.output != "table" && o.output != "json") {
		fs.Usage()
		return exitUsage
	}
	if rest[0] == "version" {
		fmt.Fprintln(stdout, buildinfo.String("ordersysctl"))
		return exitOK
	}
	cmd, args := commands[rest[0]+" "+first(rest[1:])], rest[min(2, len(rest)):]
	ok := cmd != nil
	if !ok { // a one-word command
		cmd, ok = commands[rest[0]]
		args = rest[1:]
	}
	if !ok {
		fmt.Fprintf(stderr, "ordersysctl: unknown command %q\n\n", strings.Join(rest, " "))
		fs.Usage()
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	err := cmd(ctx, o, args)
	return report(stderr, err)
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// errUsage marks bad arguments of a command.
var errUsage = errors.New("usage")

// report prints err and maps it to the exit code.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "ordersysctl: %v\n", err)
	if errors.Is(err, errUsage) {
		return exitUsage
	}
	switch status.Code(err) {
	case codes.InvalidArgument:
		return exitUsage
	case codes.NotFound:
		return exitNotFound
	case codes.Unauthenticated, codes.PermissionDenied:
		return exitDenied
	case codes.Unavailable, codes.DeadlineExceeded:
		return exitUnavailable
	default:
		return exitFailed
	}
}

// dial connects to a service with the global TLS and token settings.
func (o options) dial(addr string) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if o.caFile != "" || o.certFile != "" {
		c, err := grpcx.ClientTLS(o.caFile, o.certFile, o.keyFile)
		if err != nil {
			return nil, err
		}
		creds = c
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if o.tokenFile != "" {
		raw, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("token: %w", err)
		}
		if o.caFile == "" && !o.insecureToken {
			return nil, fmt.Errorf("%w: a token is only sent over TLS: give -ca (or -insecure-token on a developer machine)", errUsage)
		}
		opts = append(opts, grpc.WithPerRPCCredentials(grpcx.BearerToken{Token: strings.TrimSpace(string(raw)), AllowInsecure: o.insecureToken}))
	}
	return grpcx.ClientConn(addr, opts...)
}
