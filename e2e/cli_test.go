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
// at once, exits 0 and starts nothing. ordersysctl, whose services are unreachable here, also
// answers a command's --help with that command's flags.
func TestBinariesAnswerHelpAndVersion(t *testing.T) {
	s := getSystem(t)
	for _, name := range append(append([]string{}, serviceNames...), "migrate", "ordersysctl") {
		for _, args := range [][]string{{"--help"}, {"--version"}, {"dlq", "list", "--help"}} {
			if args[0] == "dlq" && name != "ordersysctl" {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, name), args...)
			cmd.Env = append(s.serviceEnv(name), "ORDERSYS_GRPC_ADDR=not-an-address", "ORDERSYS_CQL_HOSTS=127.0.0.1:1",
				"ORDERSYSCTL_RELAY=127.0.0.1:1", "ORDERSYSCTL_QUERY=127.0.0.1:1", "ORDERSYSCTL_PROJECTOR=127.0.0.1:1")
			out, err := cmd.CombinedOutput()
			cancel()
			if err != nil {
				t.Errorf("%s %v: %v\n%s", name, args, err, out)
				continue
			}
			text := string(out)
			switch {
			case args[0] == "dlq":
				if !strings.Contains(text, "usage: ordersysctl [flags] dlq list") || !strings.Contains(text, "-since") {
					t.Errorf("ordersysctl dlq list --help shows no usage or flags:\n%s", text)
				}
				continue
			case !strings.Contains(text, name+" "+buildinfo.Version()+" (revision "):
				t.Errorf("%s %v does not name its build:\n%s", name, args, text)
			}
			env := "ORDERSYS_" // the services' configuration; ordersysctl's flags name ORDERSYSCTL_*
			if name == "ordersysctl" {
				env = "ORDERSYSCTL_"
			}
			if args[0] == "--help" && (!strings.Contains(text, "usage: "+name) || !strings.Contains(text, env)) {
				t.Errorf("%s --help shows no usage or configuration:\n%s", name, text)
			}
		}
	}
}
