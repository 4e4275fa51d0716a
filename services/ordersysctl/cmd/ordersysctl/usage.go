package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/ordersys/ordersys/pkg/buildinfo"
)

// cmdDoc is one entry of the usage: a command, or commands that differ only in their last word
// and share their arguments ("dlq show|redrive|discard"), the arguments, and what it does.
// The usage (-h), each command's own help (COMMAND -h) and its usage errors are made from these;
// docs/operations.md shows the same lines (TestOperationsDocShowsTheUsage).
type cmdDoc struct {
	name  string   // "relay status", or "dlq show|redrive|discard"
	args  string   // flags and arguments: "[-topic T] ID"
	about []string // one entry per line
}

// dlqListArgs are the arguments of both dead-letter lists.
const dlqListArgs = "[-topic T] [-aggregate ID] [-reason TEXT] [-since T] [-until T] [-limit N] [-page TOKEN]"

// dlqRedriveAllArgs are the arguments of both bulk re-drives.
const dlqRedriveAllArgs = "[-topic T] [-aggregate ID] [-reason TEXT] [-since T] [-until T] [-again]"

var cmdDocs = []cmdDoc{
	{"relay status", "", []string{"the relay replica: the outbox shards it publishes, breaker, lag,", "checkpoint age per cursor, counters"}},
	{"dlq list", dlqListArgs, []string{"dead letters of the relay (every event topic by default),",
		"filtered, a page at a time (T: RFC 3339 or a duration ago)"}},
	{"dlq show|redrive|discard", "[-topic T] ID", []string{"one dead letter: its bytes / publish it again / delete it"}},
	{"dlq redrive-all", dlqRedriveAllArgs, []string{"publish again every dead letter the filters match (not those",
		"re-driven before, but with -again), with progress;", "exit 1 if any failed"}},
	{"projector status", "", []string{"the projections' versions (active, building, previous) and",
		"each version's position, lag (messages and the oldest's age)",
		"and rate on the topics"}},
	{"projector rebuild", "[-source store|topics] PROJECTION", []string{"rebuild a projection (orders, customers) into a new version,",
		"in the projector, from the event store (default) or the topics;",
		"shows its progress until readers are switched to it (a bar on",
		"a terminal, else one line per report); Ctrl-C stops watching only"}},
	{"projector watch-rebuild", "PROJECTION", []string{"follow the rebuild this projector runs"}},
	{"projector abort-rebuild", "PROJECTION", []string{"give a rebuild up: readers never switch to it (its tables stay)"}},
	{"projector switch-back", "PROJECTION", []string{"make the previous version active again, while still written"}},
	{"projector drop-version", "PROJECTION N", []string{"drop the tables of a version nothing uses"}},
	{"projector-dlq list", dlqListArgs, []string{"dead letters of the projector, as dlq list (-topic: the event",
		"topic or its .projector.dlq topic)"}},
	{"projector-dlq show|redrive|discard", "[-topic T] ID", []string{"one of them: its bytes / publish it to the event topic again /",
		"delete it"}},
	{"projector-dlq redrive-all", dlqRedriveAllArgs, []string{"every one the filters match, as dlq redrive-all"}},
	{"order get", "ID", []string{"an order's read model (query service)"}},
	{"order history", "[-limit N] ID", []string{"an order's events (query service)"}},
	{"republish", "-job J [-topic T] [-rate N] [ID...]", []string{"publish the event store again (every aggregate, resumable by",
		"job, or the given ones) at most N events a second, with progress"}},
	{"pii-kek new|rotate|drop-old", "FILE", []string{"write a key-encryption key file for personal data",
		"(ORDERSYS_PII_KEK_FILE): a new one, a new primary key added,", "the old keys dropped (docs/privacy.md)"}},
	{"version", "", []string{"this build (also -version)"}},
	{"help", "[COMMAND]", []string{"this text, or one command's flags (also COMMAND -h)"}},
}

// aboutColumn is where the descriptions start in the usage.
const aboutColumn = 44

// commandsUsage renders the entries whose name starts with prefix ("" for all), as the usage
// shows them.
func commandsUsage(prefix string) string {
	var b strings.Builder
	for _, d := range cmdDocs {
		if !strings.HasPrefix(d.name+" ", prefix) {
			continue
		}
		head := strings.TrimSpace("  " + d.name + " " + d.args)
		if len(head)+2 > aboutColumn-2 {
			fmt.Fprintf(&b, "  %s\n%s", head, strings.Repeat(" ", aboutColumn))
		} else {
			fmt.Fprintf(&b, "  %-*s", aboutColumn-2, head)
		}
		b.WriteString(strings.Join(d.about, "\n"+strings.Repeat(" ", aboutColumn)))
		b.WriteString("\n")
	}
	return b.String()
}

// docOf returns the entry of the command name ("dlq show").
func docOf(name string) (cmdDoc, bool) {
	for _, d := range cmdDocs {
		group, verbs, _ := strings.Cut(d.name, " ")
		if d.name == name || (verbs != "" && slices.ContainsFunc(strings.Split(verbs, "|"), func(v string) bool { return group+" "+v == name })) {
			return d, true
		}
	}
	return cmdDoc{}, false
}

// synopsis is the command line of the command name, e.g. "ordersysctl dlq show [-topic T] ID".
func synopsis(name string) string {
	d, _ := docOf(name)
	return strings.TrimSpace("ordersysctl [flags] " + name + " " + d.args)
}

// printUsage writes the whole usage: the commands, the global flags of fs and the build.
func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: ordersysctl [flags] <command> [args]\n\ncommands:\n%s\nflags (before the command):\n", commandsUsage(""))
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintf(w, "\nExit codes: 0 done, 1 failed, 2 bad usage or input, 3 not found, 4 not allowed (no or wrong\n"+
		"token), 5 a service is unavailable. docs/operations.md has the runbooks.\n\n%s\n", buildinfo.String("ordersysctl"))
}

// errHelp reports that a command's help was printed instead of running it (exit 0).
var errHelp = errors.New("help printed")

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// wantsHelp reports whether any argument before "--" asks for help: the command then prints
// its help and does nothing else, wherever the flag stands (`dlq discard ID --help` discards
// nothing).
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if isHelp(a) {
			return true
		}
	}
	return false
}

// cmdFlags returns the flag set of the command name ("dlq list"); its flags are added before
// parseCmd.
func cmdFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseCmd parses the arguments of a command with fs and checks that between minArgs and
// maxArgs (negative: any number) remain. A help flag prints the command's help to stdout and
// returns errHelp; bad flags or a wrong number of arguments return errUsage with the synopsis.
func (o options) parseCmd(fs *flag.FlagSet, args []string, minArgs, maxArgs int) error {
	if wantsHelp(args) {
		printCmdHelp(o.stdout, fs)
		return errHelp
	}
	err := fs.Parse(args)
	if err == nil && (fs.NArg() < minArgs || (maxArgs >= 0 && fs.NArg() > maxArgs)) {
		err = fmt.Errorf("want %s", argCount(minArgs, maxArgs))
	}
	if err != nil {
		return fmt.Errorf("%w: %s (%v; ordersysctl %s -h shows its flags)", errUsage, synopsis(fs.Name()), err, fs.Name())
	}
	return nil
}

// argCount renders the number of arguments a command takes.
func argCount(lo, hi int) string {
	plural := func(n int) string {
		if n == 1 {
			return "1 argument"
		}
		return fmt.Sprintf("%d arguments", n)
	}
	switch {
	case lo == hi && lo == 0:
		return "no argument"
	case lo == hi:
		return plural(lo)
	case hi < 0:
		return "at least " + plural(lo)
	}
	return fmt.Sprintf("%d to %d arguments", lo, hi)
}

// printCmdHelp writes the help of the command of fs: its synopsis, what it does and its flags.
func printCmdHelp(w io.Writer, fs *flag.FlagSet) {
	d, _ := docOf(fs.Name())
	fmt.Fprintf(w, "usage: %s\n\n%s\n", synopsis(fs.Name()), strings.Join(d.about, "\n"))
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintf(w, "\nflags (after the command):\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	fmt.Fprintf(w, "\nThe global flags (services, TLS, token, -o, -timeout) come before the command: ordersysctl -h.\n")
}
