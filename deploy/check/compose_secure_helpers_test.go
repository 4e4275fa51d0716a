package check

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// generateSecrets runs the real generator (devsecrets -compose, as the overlay's header says)
// into a fresh folder and returns it with the names of the files it wrote: what the overlay
// mounts is checked against these, not against a copy of the list.
func generateSecrets(t *testing.T) (dir string, outputs []string) {
	t.Helper()
	dir = t.TempDir()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command runs the secrets generator: %v", err)
	}
	cmd := exec.Command(goBin, "run", "./pkg/devpki/cmd/devsecrets", "-compose", "-dir", dir)
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("devsecrets -compose: %v\n%s", err, out)
	}
	entries, err := os.ReadDir(dir)
	for _, e := range entries {
		outputs = append(outputs, e.Name())
	}
	if err != nil || len(outputs) == 0 {
		t.Fatalf("devsecrets -compose wrote nothing into %s: %v", dir, err)
	}
	return dir, outputs
}

// loadSecureCompose loads compose.yaml with compose.secure.yaml over it, as `docker compose -f
// deploy/compose.yaml -f deploy/compose.secure.yaml` would, with env as the only interpolation
// variables (never the developer's shell).
func loadSecureCompose(t *testing.T, env types.Mapping, opts ...func(*loader.Options)) *types.Project {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "deploy")
	files := []types.ConfigFile{{Filename: filepath.Join(dir, "compose.yaml")}, {Filename: filepath.Join(dir, "compose.secure.yaml")}}
	opts = append(opts, func(o *loader.Options) { o.SetProjectName("ordersys", true) })
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{WorkingDir: dir, ConfigFiles: files, Environment: env}, opts...)
	if err != nil {
		t.Fatalf("compose.yaml + compose.secure.yaml do not load: %v", err)
	}
	return p
}

// readEnvFile reads a generated env file with compose's own parser.
func readEnvFile(t *testing.T, file string) map[string]string {
	t.Helper()
	vars, err := dotenv.Read(file)
	if err != nil {
		t.Fatal(err)
	}
	return vars
}

func readCertificate(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var c *x509.Certificate
	if block, _ := pem.Decode(raw); block != nil {
		c, err = x509.ParseCertificate(block.Bytes)
	}
	if c == nil {
		t.Fatalf("%s: no PEM certificate: %v", file, err)
	}
	return c
}

// tokenClaims decodes (without verifying) the claims of a generated token.
func tokenClaims(t *testing.T, file string) (iss string, aud []string) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(strings.TrimSpace(string(raw)), ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[min(1, len(parts)-1)])
	if err != nil || len(parts) != 3 {
		t.Fatalf("%s: not a JWT: %v", file, err)
	}
	var claims struct {
		Iss string          `json:"iss"`
		Aud json.RawMessage `json:"aud"` // a string or a list of them
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if json.Unmarshal(claims.Aud, &aud) != nil {
		aud = []string{strings.Trim(string(claims.Aud), `"`)}
	}
	return claims.Iss, aud
}

// installed maps each volume the certs job fills to the files it copies there (FILES_<DIR> for
// its mount /out/<dir>), and to the owner it gives them (OWNER_<DIR>).
func installed(t *testing.T, p *types.Project) (files map[string][]string, owner map[string]string) {
	t.Helper()
	certs, err := p.GetService("certs")
	if err != nil {
		t.Fatal("no certs job in the overlay")
	}
	files, owner = map[string][]string{}, map[string]string{}
	for _, v := range certs.Volumes {
		dir, ok := strings.CutPrefix(v.Target, "/out/")
		if v.Type != types.VolumeTypeVolume || !ok {
			continue
		}
		key := strings.ToUpper(dir)
		files[v.Source] = strings.Fields(envValue(certs, "FILES_"+key))
		owner[v.Source] = envValue(certs, "OWNER_"+key)
		if len(files[v.Source]) == 0 || owner[v.Source] == "" {
			t.Errorf("certs: %s is filled, but FILES_%s or OWNER_%s is empty", v.Target, key, key)
		}
	}
	return files, owner
}

// checkMounted fails t unless file (a path inside service s) is a file the certs job copies
// into a volume s mounts read-only.
func checkMounted(t *testing.T, s types.ServiceConfig, what, file string, copied map[string][]string) {
	t.Helper()
	if file == "" {
		t.Errorf("%s: %s is not set", s.Name, what)
		return
	}
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeVolume || path.Dir(file) != v.Target {
			continue
		}
		if !v.ReadOnly {
			t.Errorf("%s: %s is mounted writable", s.Name, v.Target)
		}
		if !slices.Contains(copied[v.Source], path.Base(file)) {
			t.Errorf("%s: %s = %s, but the certs job copies %v into volume %s", s.Name, what, file, copied[v.Source], v.Source)
		}
		return
	}
	t.Errorf("%s: %s = %s is in no mounted volume", s.Name, what, file)
}

// flagValue returns the value of -name=value or --name=value in args.
func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(strings.TrimLeft(a, "-"), name+"="); ok && strings.HasPrefix(a, "-") {
			return v
		}
	}
	return ""
}

// tlsEntry is one entry of kafka_api_tls or admin_api_tls in redpanda.yaml.
type tlsEntry struct {
	Name           string `json:"name"`
	Enabled        bool   `json:"enabled"`
	CertFile       string `json:"cert_file"`
	KeyFile        string `json:"key_file"`
	TruststoreFile string `json:"truststore_file"`
}
