package config

//go:generate go run ./cmd/envdoc

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"text/tabwriter"

	"github.com/ordersys/ordersys/pkg/buildinfo"
)

// Variable is one environment variable a configuration reads, as --help=json lists it.
type Variable struct {
	// Name is the variable, e.g. ORDERSYS_CQL_HOSTS.
	Name string `json:"name"`
	// Default is the value the binary uses when the variable is unset ("" for an empty string
	// or list).
	Default string `json:"default"`
	// Secret reports a field tagged secret:"true": its value is masked in logs, and a
	// deployment takes it from a secret store.
	Secret bool `json:"secret,omitempty"`
	// Type is the Go type of the field: string, []string, int, int64, float64, bool or
	// time.Duration.
	Type string `json:"type"`
	// Package, Struct and Field say where the variable is declared: the import path of the
	// package, the struct type's name and the field's name (whose doc comment explains it).
	Package string `json:"package"`
	Struct  string `json:"struct"`
	Field   string `json:"field"`
}

// Help is what --help=json writes: the binary and every variable it reads.
type Help struct {
	Binary    string     `json:"binary"`
	Variables []Variable `json:"variables"`
}

// Variables lists the variables cfg (a pointer to a config struct) reads, in field order. A
// value already in a field (as Defaults pre-fills the per-service addresses) is its default,
// as Load keeps it when the variable is unset; otherwise the default:"..." tag; otherwise the
// zero value ("" for strings and lists).
func Variables(cfg any) []Variable {
	rv := reflect.ValueOf(cfg)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return nil
	}
	var out []Variable
	walk(rv.Elem(), func(f reflect.Value, sf reflect.StructField, _ string, owner reflect.Type) {
		env, ok := sf.Tag.Lookup("env")
		if !ok || env == "" {
			return
		}
		def, tagged := sf.Tag.Lookup("default")
		switch {
		case !f.IsZero():
			def = render(f, sf) // pre-filled
		case !tagged && !emptyIsValue(f):
			def = format(f) // the zero value: false, 0, 0s
		}
		out = append(out, Variable{Name: env, Default: def, Secret: isSecret(sf), Type: f.Type().String(),
			Package: owner.PkgPath(), Struct: owner.Name(), Field: sf.Name})
	})
	return out
}

// InfoRequested answers the arguments that ask about a binary instead of running it: when the
// first one is -h, -help, --help or help, it writes usage and then every ORDERSYS_* variable cfg
// (a pointer to the binary's config struct) reads, with its default (see Variables); --help=json
// writes the same list as JSON (a Help), from which `go generate ./pkg/config` writes
// docs/configuration.md; when it is -version, --version or version, it writes the build (see
// buildinfo.String). It reports whether it answered, so main exits at once without starting
// anything.
func InfoRequested(args []string, w io.Writer, name, usage string, cfg any) bool {
	if len(args) == 0 {
		return false
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintf(w, "%s\n\nConfiguration (environment variables):\n", usage)
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
		for _, v := range Variables(cfg) {
			def := v.Default
			if def == "" {
				def = "(empty)"
			}
			fmt.Fprintf(tw, "  %s\tdefault %s\n", v.Name, def)
		}
		_ = tw.Flush()
		fmt.Fprintf(w, "\n%s\n", buildinfo.String(name))
		return true
	case "--help=json", "-help=json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(Help{Binary: name, Variables: Variables(cfg)}); err != nil {
			fmt.Fprintf(w, "%s: --help=json: %v\n", name, err)
		}
		return true
	case "-version", "--version", "version":
		fmt.Fprintln(w, buildinfo.String(name))
		return true
	}
	return false
}
