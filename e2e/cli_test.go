package e2e_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/buildinfo"
)

// TestBinariesAnswerHelpAndVersion runs every built binary with --help and --version, with no
// server reachable and an environment that would make a start fail (a bad port): each answers
// at once, exits 0 and starts nothing.
func TestBinariesAnswerHelpAndVersion(t *testing.T) {
	s := getSystem(t)
	for _, name := range append(append([]string{}, serviceNames...), "migrate") {
		for _, arg := range []string{"--help", "--version"} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, name), arg)
			cmd.Env = append(s.serviceEnv(name), "ORDERSYS_GRPC_ADDR=not-an-address", "ORDERSYS_CQL_HOSTS=127.0.0.1:1")
			out, err := cmd.CombinedOutput()
			cancel()
			if err != nil {
				t.Errorf("%s %s: %v\n%s", name, arg, err, out)
				continue
			}
			text := string(out)
			if !strings.Contains(text, name+" "+buildinfo.Version()+" (revision ") {
				t.Errorf("%s %s does not name its build:\n%s", name, arg, text)
			}
			if arg == "--help" && (!strings.Contains(text, "usage: "+name) || !strings.Contains(text, "ORDERSYS_")) {
				t.Errorf("%s --help shows no usage or configuration:\n%s", name, text)
			}
		}
	}
}
