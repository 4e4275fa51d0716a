// Command ordersysctl is the operators' command line for a running ordersys: the relay's and the
// projector's status and dead letters, rebuilds of the read models, orders, re-publication of
// the event store and the personal-data key file. `ordersysctl -h` lists the commands (cmdDocs
// in usage.go), `ordersysctl COMMAND -h` shows one command's flags, `ordersysctl -version` the
// build; docs/operations.md shows the same usage and the runbooks.
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

// run executes one command and returns the exit code. -h, --help and help print the usage (or a
// command's help) and -version, --version and version the build, to stdout, with exit 0 and
// without calling any service.
func run(args []string, stdout, stderr io.Writer) int {
	o := options{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("ordersysctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // printed below: to stdout when asked for, to stderr after a mistake
	fs.StringVar(&o.relay, "relay", env("ORDERSYSCTL_RELAY", "127.0.0.1:50053"), "cdc-relay gRPC address (ORDERSYSCTL_RELAY)")
	fs.StringVar(&o.projector, "projector", env("ORDERSYSCTL_PROJECTOR", "127.0.0.1:50054"), "projector gRPC address (ORDERSYSCTL_PROJECTOR)")
	fs.StringVar(&o.query, "query", env("ORDERSYSCTL_QUERY", "127.0.0.1:50052"), "query service gRPC address (ORDERSYSCTL_QUERY)")
	fs.StringVar(&o.caFile, "ca", env("ORDERSYSCTL_CA_FILE", ""), "CA certificates (PEM) to trust: set, the calls use TLS (ORDERSYSCTL_CA_FILE)")
	fs.StringVar(&o.certFile, "cert", env("ORDERSYSCTL_CERT_FILE", ""), "client certificate (PEM) for mutual TLS (ORDERSYSCTL_CERT_FILE)")
	fs.StringVar(&o.keyFile, "key", env("ORDERSYSCTL_KEY_FILE", ""), "client key (PEM) for mutual TLS (ORDERSYSCTL_KEY_FILE)")
	fs.StringVar(&o.tokenFile, "token-file", env("ORDERSYSCTL_TOKEN_FILE", ""), "file holding the bearer token (ORDERSYSCTL_TOKEN_FILE)")
	fs.BoolVar(&o.insecureToken, "insecure-token", false, "send the token over a plaintext connection (no -ca): only for a developer machine")
	fs.StringVar(&o.output, "o", "table", "output: table or json")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "deadline of each call (not of the streams of projector rebuild, watch-rebuild and republish, nor of a whole redrive-all)")
	version := fs.Bool("version", false, "print this build and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, fs)
			return exitOK
		}
		printUsage(stderr, fs)
		return exitUsage
	}
	rest := fs.Args()
	switch {
	case *version || first(rest) == "version":
		fmt.Fprintln(stdout, buildinfo.String("ordersysctl"))
		return exitOK
	case first(rest) == "help":
		return help(o, fs, rest[1:])
	case len(rest) == 0 || (o.output != "table" && o.output != "json"):
		if len(rest) > 0 {
			fmt.Fprintf(stderr, "ordersysctl: -o %q: want table or json\n\n", o.output)
		}
		printUsage(stderr, fs)
		return exitUsage
	}
	cmd, args := commands[rest[0]+" "+first(rest[1:])], rest[min(2, len(rest)):]
	ok := cmd != nil
	if !ok { // a one-word command
		cmd, ok = commands[rest[0]]
		args = rest[1:]
	}
	if !ok {
		if wantsHelp(rest[1:]) && commandsUsage(rest[0]+" ") != "" { // a group: `ordersysctl dlq -h`
			return help(o, fs, rest[:1])
		}
		fmt.Fprintf(stderr, "ordersysctl: unknown command %q\n\n", strings.Join(rest, " "))
		printUsage(stderr, fs)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	err := cmd(ctx, o, args)
	return report(stderr, err)
}

// help answers `ordersysctl help [COMMAND]`: the usage, the help of one command (its flags) or
// the commands of a group (`help projector`).
func help(o options, fs *flag.FlagSet, topic []string) int {
	name := strings.Join(topic, " ")
	switch {
	case name == "":
		printUsage(o.stdout, fs)
		return exitOK
	case commands[name] != nil:
		return report(o.stderr, commands[name](context.Background(), o, []string{"-h"}))
	case commandsUsage(name+" ") != "":
		fmt.Fprintf(o.stdout, "usage: ordersysctl [flags] %s ...\n\n%s\nordersysctl %s <command> -h: its flags.\n", name, commandsUsage(name+" "), name)
		return exitOK
	}
	fmt.Fprintf(o.stderr, "ordersysctl: help: unknown command %q\n\n", name)
	printUsage(o.stderr, fs)
	return exitUsage
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
	if err == nil || errors.Is(err, errHelp) {
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
