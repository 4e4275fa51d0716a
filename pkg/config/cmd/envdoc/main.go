// Command envdoc writes docs/configuration.md, the reference of every ORDERSYS_* environment
// variable, from the binaries themselves: it builds each binary, asks it `--help=json` (the
// variables its config struct reads, with their defaults; config.InfoRequested) and takes each
// variable's description from the doc comment of the struct field that declares it. So the
// reference follows the config structs wherever they live. Run it through
// `go generate ./pkg/config` or `make env-doc`; `make env-doc-check` fails when the committed
// page differs from what it writes.
//
// Usage, anywhere inside the workspace: envdoc [-o FILE] (default: docs/configuration.md of the
// workspace root).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/ordersys/ordersys/pkg/config"
)

// binaries are the main packages (relative to the workspace root) of the binaries that read
// ORDERSYS_* variables, in the order the reference lists them. Each answers --help=json.
var binaries = []string{
	"services/command/cmd/command",
	"services/query/cmd/query",
	"services/cdc-relay/cmd/cdc-relay",
	"services/projector/cmd/projector",
	"services/command/cmd/migrate",
}

// docPath is where the reference lives, relative to the workspace root.
const docPath = "docs/configuration.md"

func main() {
	out := flag.String("o", "", "write the reference to this file (default: "+docPath+" of the workspace root)")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintf(os.Stderr, "envdoc: %v\n", err)
		os.Exit(1)
	}
}

func run(out string) error {
	root, err := workspaceRoot()
	if err != nil {
		return err
	}
	if out == "" {
		out = filepath.Join(root, docPath)
	}
	helps, err := askBinaries(root)
	if err != nil {
		return err
	}
	docs, err := fieldDocs(root, helps)
	if err != nil {
		return err
	}
	page := render(helps, docs)
	if err := os.WriteFile(out, page, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "envdoc: wrote %s\n", out)
	return nil
}

// workspaceRoot is the folder of the go.work in use.
func workspaceRoot() (string, error) {
	gowork, err := goCmd("", "env", "GOWORK")
	if err != nil {
		return "", err
	}
	gowork = strings.TrimSpace(gowork)
	if gowork == "" || gowork == "off" {
		return "", errors.New("not inside the ordersys workspace (go env GOWORK is empty): run it from the repository")
	}
	return filepath.Dir(gowork), nil
}

// binary is one binary's answer to --help=json, with its main package.
type binary struct {
	pkg  string // relative to the workspace root
	help config.Help
}

// askBinaries builds every binary into a temporary folder (one go build) and runs each with
// --help=json.
func askBinaries(root string) ([]binary, error) {
	tmp, err := os.MkdirTemp("", "envdoc-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	args := []string{"build", "-o", tmp + string(filepath.Separator)}
	for _, pkg := range binaries {
		args = append(args, "./"+pkg)
	}
	fmt.Fprintf(os.Stderr, "envdoc: building %d binaries\n", len(binaries))
	if _, err := goCmd(root, args...); err != nil {
		return nil, err
	}
	var out []binary
	for _, pkg := range binaries {
		exe := filepath.Join(tmp, filepath.Base(pkg))
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(exe, "--help=json")
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("%s --help=json: %w\n%s", pkg, err, stderr.String())
		}
		b := binary{pkg: pkg}
		if err := json.Unmarshal(stdout.Bytes(), &b.help); err != nil {
			return nil, fmt.Errorf("%s --help=json: %w (does its main call config.InfoRequested?)", pkg, err)
		}
		if len(b.help.Variables) == 0 {
			return nil, fmt.Errorf("%s --help=json lists no variable", pkg)
		}
		seen := map[string]bool{}
		for i, v := range b.help.Variables {
			if seen[v.Name] {
				return nil, fmt.Errorf("%s reads %s through two fields: one variable, one field", pkg, v.Name)
			}
			seen[v.Name] = true
			if v.Package == "main" { // reflect's name of every main package
				b.help.Variables[i].Package = modulePrefix + pkg
			}
		}
		out = append(out, b)
	}
	return out, nil
}

// goCmd runs the go command in dir and returns its standard output; a failure carries its
// standard error.
func goCmd(dir string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("go", args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}
