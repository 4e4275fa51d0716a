package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ordersys/ordersys/pkg/buildinfo"
)

// noServices points every service at a port nothing listens on: a command that called one
// would fail with exit 5 instead of answering its help.
var noServices = []string{"-relay", "127.0.0.1:1", "-query", "127.0.0.1:1", "-projector", "127.0.0.1:1", "-timeout", "1s"}

// ctl runs ordersysctl with args and returns stdout, stderr and the exit code.
func ctl(args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return out.String(), errOut.String(), code
}

// reFlagLine finds the flags in the output of flag.PrintDefaults.
var reFlagLine = regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*)`)

// commandNames returns the keys of commands, sorted.
func commandNames() []string {
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// TestVersionAndHelp: --version (and -version, version) prints the build and --help (and -h,
// help) the usage with every global flag and its environment variable, on stdout with exit 0.
func TestVersionAndHelp(t *testing.T) {
	for _, arg := range []string{"--version", "-version", "version"} {
		out, errOut, code := ctl(append(slices.Clone(noServices), arg)...)
		if code != exitOK || strings.TrimSpace(out) != buildinfo.String("ordersysctl") || errOut != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", arg, code, out, errOut)
		}
	}
	for _, arg := range []string{"--help", "-h", "-help", "help"} {
		out, errOut, code := ctl(arg)
		if code != exitOK || errOut != "" || !strings.HasPrefix(out, "usage: ordersysctl") || !strings.Contains(out, buildinfo.String("ordersysctl")) {
			t.Errorf("%s: exit %d, stderr %q, stdout:\n%s", arg, code, errOut, out)
		}
		for _, want := range []string{"-timeout duration", "ORDERSYSCTL_RELAY", "ORDERSYSCTL_TOKEN_FILE", "republish", "pii-kek"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s does not show %q:\n%s", arg, want, out)
			}
		}
	}
	// A mistake still gets the usage, on stderr, with exit 2.
	if out, errOut, code := ctl("-no-such-flag"); code != exitUsage || out != "" || !strings.Contains(errOut, "usage: ordersysctl") {
		t.Errorf("-no-such-flag: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestEveryCommandAnswersHelp: `ordersysctl COMMAND -h` (or --help, or `help COMMAND`, or a help
// flag after the arguments) prints the command's synopsis and every flag it takes, with exit 0
// and without calling a service; the synopsis names exactly the flags the command defines.
func TestEveryCommandAnswersHelp(t *testing.T) {
	kek := filepath.Join(t.TempDir(), "kek.json")
	for _, name := range commandNames() {
		words := strings.Fields(name)
		for _, args := range [][]string{
			append(slices.Clone(words), "-h"),
			append(slices.Clone(words), "--help"),
			append([]string{"help"}, words...),
			append(slices.Clone(words), "x", "y", "--help"), // after arguments: still only help
		} {
			if words[0] == "pii-kek" && args[0] != "help" {
				args = append(args, kek) // help must not write the file
			}
			out, errOut, code := ctl(append(slices.Clone(noServices), args...)...)
			if code != exitOK || errOut != "" || !strings.HasPrefix(out, "usage: "+synopsis(name)+"\n") {
				t.Errorf("%v: exit %d, stderr %q, stdout:\n%s", args, code, errOut, out)
				continue
			}
			doc, _ := docOf(name)
			for _, m := range reFlagLine.FindAllStringSubmatch(out, -1) {
				if !strings.Contains(" "+doc.args+" ", " -"+m[1]+" ") && !strings.Contains(doc.args, "[-"+m[1]+" ") &&
					!strings.Contains(doc.args, "[-"+m[1]+"]") { // a boolean flag
					t.Errorf("%s defines -%s, which its synopsis %q does not show", name, m[1], doc.args)
				}
			}
			for _, f := range regexp.MustCompile(`-([a-z]+)`).FindAllStringSubmatch(doc.args, -1) {
				if !strings.Contains(out, "\n  -"+f[1]+" ") && !strings.Contains(out, "\n  -"+f[1]+"\n") {
					t.Errorf("%s: the synopsis shows -%s, which the command does not define:\n%s", name, f[1], out)
				}
			}
		}
	}
	if _, err := os.Stat(kek); !os.IsNotExist(err) {
		t.Errorf("pii-kek new FILE -h wrote %s (%v)", kek, err)
	}
	// A group lists its commands.
	for want, args := range map[string][]string{"dlq show|redrive|discard": {"dlq", "-h"}, "projector rebuild": {"help", "projector"}} {
		out, errOut, code := ctl(args...)
		if code != exitOK || errOut != "" || !strings.Contains(out, want) {
			t.Errorf("%v: exit %d, stderr %q, stdout:\n%s", args, code, errOut, out)
		}
	}
	// Bad arguments: exit 2 with the synopsis.
	for _, args := range [][]string{{"order", "get"}, {"dlq", "list", "-frobnicate"}, {"relay", "status", "extra"}, {"help", "frobnicate"}} {
		_, errOut, code := ctl(append(slices.Clone(noServices), args...)...)
		if code != exitUsage || !strings.Contains(errOut, "usage: ") {
			t.Errorf("%v: exit %d, stderr %q; want %d and the usage", args, code, errOut, exitUsage)
		}
	}
}

// TestEveryCommandIsDocumented: each command has its entry in the usage, and each entry names
// commands that exist.
func TestEveryCommandIsDocumented(t *testing.T) {
	for _, name := range commandNames() {
		if _, ok := docOf(name); !ok {
			t.Errorf("command %q is not in cmdDocs", name)
		}
	}
	for _, d := range cmdDocs {
		group, verbs, _ := strings.Cut(d.name, " ")
		if d.name == "version" || d.name == "help" {
			continue
		}
		if verbs == "" {
			verbs, group = group, ""
		}
		for _, v := range strings.Split(verbs, "|") {
			if name := strings.TrimSpace(group + " " + v); commands[name] == nil {
				t.Errorf("cmdDocs shows %q, which is no command", name)
			}
		}
	}
}

// TestOperationsDocShowsTheUsage: the command block of docs/operations.md is the usage's
// list of commands, and its flags table names every global flag.
func TestOperationsDocShowsTheUsage(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	_, section, ok := strings.Cut(doc, "\n## ordersysctl\n")
	if !ok {
		t.Fatal(`docs/operations.md has no "## ordersysctl" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "```sh\n")
	block, _, ok2 := strings.Cut(block, "```\n")
	if !ok || !ok2 {
		t.Fatal("the ordersysctl section of docs/operations.md has no sh block")
	}
	if want := "ordersysctl [flags] <command> [args]\n" + commandsUsage(""); block != want {
		t.Errorf("the command block of docs/operations.md:\n%s\nis not the usage (usage.go):\n%s", block, want)
	}
	usage, _, _ := ctl("-h")
	for _, m := range reFlagLine.FindAllStringSubmatch(usage, -1) {
		if !strings.Contains(section, "`-"+m[1]+"`") {
			t.Errorf("the flags table of docs/operations.md lacks -%s", m[1])
		}
	}
}
