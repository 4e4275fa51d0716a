package check

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// No Docker engine here, so the Dockerfile is checked by reading it: what it copies exists and is
// not excluded by .dockerignore, it builds every binary of service-env.yaml, each service has its
// own entry-point target, and the runtime is static and non-root.

type instruction struct {
	cmd  string // upper-case keyword
	args string
	line int
}

type stage struct {
	name  string
	from  string
	instr []instruction
}

// parseDockerfile splits the Dockerfile into stages of logical instructions (continuation lines
// joined, comments and the parser directive dropped).
func parseDockerfile(t *testing.T, path string) (args map[string]string, stages []*stage) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	args = map[string]string{}
	var cur strings.Builder
	start, n := 0, 0
	flush := func() {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			return
		}
		cmd, rest, _ := strings.Cut(text, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(rest), line: start}
		switch {
		case in.cmd == "FROM":
			fields := strings.Fields(in.args)
			st := &stage{from: fields[0]}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				st.name = fields[2]
			}
			stages = append(stages, st)
		case in.cmd == "ARG" && len(stages) == 0:
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		case len(stages) > 0:
			last := stages[len(stages)-1]
			last.instr = append(last.instr, in)
		}
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return args, stages
}

var argRef = regexp.MustCompile(`\$\{(\w+)\}`)

func expand(s string, args map[string]string) string {
	return argRef.ReplaceAllStringFunc(s, func(m string) string { return args[argRef.FindStringSubmatch(m)[1]] })
}

func TestDockerfile(t *testing.T) {
	root := repoRoot(t)
	c := loadContract(t)
	args, stages := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	ignore := loadDockerignore(t, filepath.Join(root, ".dockerignore"))
	byName := map[string]*stage{}
	for _, st := range stages {
		byName[st.name] = st
	}

	build := byName["build"]
	if build == nil || !strings.HasPrefix(expand(build.from, args), "golang:1.26") {
		t.Fatalf("want a stage `build` FROM golang:1.26, got %+v", build)
	}
	var buildCmd string
	copied := map[string]bool{}
	for _, in := range build.instr {
		switch in.cmd {
		case "ENV":
			if !strings.Contains(in.args, "CGO_ENABLED=0") {
				t.Errorf("line %d: ENV without CGO_ENABLED=0", in.line)
			}
		case "COPY":
			fields := strings.Fields(in.args)
			if strings.HasPrefix(fields[0], "--from") {
				continue
			}
			for _, src := range fields[:len(fields)-1] {
				matches, _ := filepath.Glob(filepath.Join(root, strings.TrimSuffix(src, "/")))
				if len(matches) == 0 {
					t.Errorf("line %d: COPY %s: matches nothing in the repository", in.line, src)
				}
				for _, m := range matches {
					rel, _ := filepath.Rel(root, m)
					copied[rel] = true
					if ignore.excluded(rel) {
						t.Errorf("line %d: COPY %s: %s is excluded by .dockerignore", in.line, src, rel)
					}
				}
			}
		case "RUN":
			if strings.Contains(in.args, "go build") {
				buildCmd = in.args
			}
		}
	}
	// go.work lists the modules; each one's go.mod must be in the image or the workspace build fails.
	for _, mod := range workspaceModules(t, root) {
		if !copied[mod+"/go.mod"] {
			t.Errorf("go.work uses %s but the Dockerfile does not COPY %s/go.mod", mod, mod)
		}
	}
	if !copied["go.work"] {
		t.Error("the Dockerfile does not COPY go.work (build with the workspace)")
	}
	if _, err := os.Stat(filepath.Join(root, "go.work.sum")); err == nil && !copied["go.work.sum"] {
		t.Error("the Dockerfile does not COPY go.work.sum")
	}
	for name, pkg := range c.binaries() {
		t.Run("builds/"+name, func(t *testing.T) {
			if !strings.Contains(buildCmd, "./"+pkg) {
				t.Fatalf("`go build` does not build ./%s", pkg)
			}
			matches, _ := filepath.Glob(filepath.Join(root, pkg, "*.go"))
			if len(matches) == 0 {
				t.Skipf("%s has no Go files yet (its service is being written): the image build would fail until it does", pkg)
			}
		})
	}

	rt := byName["runtime"]
	if rt == nil || !strings.Contains(expand(rt.from, args), "distroless/static") ||
		!strings.HasSuffix(expand(rt.from, args), ":nonroot") {
		t.Fatalf("want a stage `runtime` FROM distroless static :nonroot, got %+v", rt)
	}
	hasUser := slices.ContainsFunc(rt.instr, func(in instruction) bool {
		return in.cmd == "USER" && in.args == "65532:65532"
	})
	if !hasUser {
		t.Error("runtime stage: want USER 65532:65532")
	}
	for name := range c.binaries() {
		st := byName[name]
		if st == nil || st.from != "runtime" {
			t.Errorf("no target %q FROM runtime (its own entry point)", name)
			continue
		}
		want := `["/usr/local/bin/` + name + `"]`
		if !slices.ContainsFunc(st.instr, func(in instruction) bool { return in.cmd == "ENTRYPOINT" && in.args == want }) {
			t.Errorf("target %s: want ENTRYPOINT %s", name, want)
		}
	}
	if last := stages[len(stages)-1]; last.from != "runtime" {
		t.Errorf("default (last) stage %q is not FROM runtime", last.name)
	}
}

// workspaceModules reads the `use` folders of go.work, relative to the root, without "./".
func workspaceModules(t *testing.T, root string) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	var mods []string
	inUse := false
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "use ("):
			inUse = true
		case inUse && line == ")":
			inUse = false
		case inUse && line != "":
			mods = append(mods, strings.TrimPrefix(line, "./"))
		case strings.HasPrefix(line, "use "):
			mods = append(mods, strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(line, "use ")), "./"))
		}
	}
	return mods
}

type dockerignore []string

func loadDockerignore(t *testing.T, path string) dockerignore {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d dockerignore
	for _, line := range strings.Split(string(raw), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			d = append(d, line)
		}
	}
	return d
}

// excluded applies .dockerignore's rule (the last matching pattern wins, `!` re-includes) to a
// path and its parent folders. `**/` patterns are matched against the base name only.
func (d dockerignore) excluded(path string) bool {
	var candidates []string
	for p := filepath.Clean(path); p != "." && p != "/"; p = filepath.Dir(p) {
		candidates = append(candidates, p)
	}
	excluded := false
	for _, pat := range d {
		negate := strings.HasPrefix(pat, "!")
		pat = strings.TrimSuffix(strings.TrimPrefix(pat, "!"), "/")
		pat, baseOnly := strings.CutPrefix(pat, "**/")
		for _, cand := range candidates {
			target := cand
			if baseOnly {
				target = filepath.Base(cand)
			}
			if ok, _ := filepath.Match(pat, target); ok {
				excluded = !negate
				break
			}
		}
	}
	return excluded
}
