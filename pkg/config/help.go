package config

import (
	"fmt"
	"io"
	"reflect"
	"text/tabwriter"

	"github.com/ordersys/ordersys/pkg/buildinfo"
)

// InfoRequested answers the arguments that ask about a binary instead of running it: when the
// first one is -h, -help, --help or help, it writes usage and then every ORDERSYS_* variable cfg
// (a pointer to the binary's config struct) reads, with its default; when it is -version,
// --version or version, it writes the build (see buildinfo.String). It reports whether it
// answered, so main exits at once without starting anything.
func InfoRequested(args []string, w io.Writer, name, usage string, cfg any) bool {
	if len(args) == 0 {
		return false
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintf(w, "%s\n\nConfiguration (environment variables):\n", usage)
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
		rv := reflect.ValueOf(cfg)
		if rv.Kind() == reflect.Pointer && !rv.IsNil() && rv.Elem().Kind() == reflect.Struct {
			walk(rv.Elem(), func(f reflect.Value, sf reflect.StructField, _ string) {
				env, ok := sf.Tag.Lookup("env")
				if !ok || env == "" {
					return
				}
				def := sf.Tag.Get("default")
				if !f.IsZero() {
					def = render(f, sf)
				}
				if def == "" {
					def = "(empty)"
				}
				fmt.Fprintf(tw, "  %s\tdefault %s\n", env, def)
			})
		}
		_ = tw.Flush()
		fmt.Fprintf(w, "\n%s\n", buildinfo.String(name))
		return true
	case "-version", "--version", "version":
		fmt.Fprintln(w, buildinfo.String(name))
		return true
	}
	return false
}
