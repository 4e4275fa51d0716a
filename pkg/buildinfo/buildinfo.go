// Package buildinfo says which build of ordersys is running: the version (set at link time,
// e.g. by the Dockerfile with -ldflags "-X github.com/ordersys/ordersys/pkg/buildinfo.version=v1.4.0")
// and the VCS revision the Go toolchain stamps into the binary. Every binary prints them for
// --version, exports them as the ordersys_build_info gauge and puts the version on its traces
// as service.version.
package buildinfo

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// version is set at link time; empty means "not a release build".
var version string

// Version returns the release version of this build: the one set at link time, else the main
// module's version from the build information (a `go install …@vX`), else "dev".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Revision returns the VCS revision the binary was built from, with "-dirty" when the work tree
// had changes, or "unknown" (e.g. a build outside a git checkout, or a test binary).
func Revision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "unknown", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && rev != "unknown" {
		rev += "-dirty"
	}
	return rev
}

// String renders the build for --version, e.g. "command dev (revision 1a2b3c…, go1.26.8)".
func String(service string) string {
	return service + " " + Version() + " (revision " + Revision() + ", " + runtime.Version() + ")"
}

// Register adds ordersys_build_info{service,version,revision,goversion} = 1 to reg, the usual
// Prometheus way to join a build's identity onto any other series.
func Register(reg prometheus.Registerer, service string) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ordersys_build_info",
		Help: "Always 1; the labels say which build of the service is running.",
		ConstLabels: prometheus.Labels{
			"service": service, "version": Version(), "revision": Revision(), "goversion": runtime.Version(),
		},
	})
	g.Set(1)
	reg.MustRegister(g)
}
