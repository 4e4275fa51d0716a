package check

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// reLinkerX finds the -X importpath.name=value settings of an -ldflags value.
var reLinkerX = regexp.MustCompile(`-X[= ]([^\s"=]+)=(\S*)`)

// reLdflags finds the -ldflags value of a go build command.
var reLdflags = regexp.MustCompile(`-ldflags[= ]"([^"]*)"`)

// TestDockerfileStampsTheVersion: the image's `go build` sets the release version with the
// linker's -X, which silently does nothing when the path names no variable (a renamed package
// or variable, a typo): every image would then say "dev". Each -X must name an existing
// package-level string variable of the workspace, the version one must be pkg/buildinfo's
// `version`, and a binary linked with the Dockerfile's very flags must report the version given.
func TestDockerfileStampsTheVersion(t *testing.T) {
	root := repoRoot(t)
	_, stages := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	var buildCmd string
	for _, st := range stages {
		for _, in := range st.instr {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				buildCmd = in.args
			}
		}
	}
	m := reLdflags.FindStringSubmatch(buildCmd)
	if m == nil {
		t.Fatalf("the Dockerfile's `go build` has no -ldflags=\"...\": %s", buildCmd)
	}
	ldflags := m[1]
	sets := reLinkerX.FindAllStringSubmatch(ldflags, -1)
	versionSet := false
	for _, x := range sets {
		target, value := x[1], x[2]
		dot := strings.LastIndexByte(target, '.')
		if dot < 0 {
			t.Errorf("-X %s: want importpath.name", target)
			continue
		}
		pkg, name := target[:dot], target[dot+1:]
		dir, ok := packageDir(t, root, pkg)
		if !ok {
			t.Errorf("-X %s=%s: package %s is in no module of the workspace", target, value, pkg)
			continue
		}
		if err := stringVar(dir, name); err != nil {
			t.Errorf("-X %s=%s sets nothing: %v", target, value, err)
		}
		if value == "${VERSION}" {
			versionSet = true
			if pkg != "github.com/ordersys/ordersys/pkg/buildinfo" || name != "version" {
				t.Errorf("-X %s=${VERSION}: the release version is github.com/ordersys/ordersys/pkg/buildinfo.version", target)
			}
		}
	}
	if !versionSet {
		t.Fatalf("the Dockerfile's `go build` sets no variable to ${VERSION}: -ldflags %q", ldflags)
	}
	if testing.Short() {
		t.Skip("-short: not linking a binary with the Dockerfile's flags")
	}
	const marker = "v0.0.0-dockerfile-check"
	bin := filepath.Join(t.TempDir(), "ordersysctl")
	build := exec.Command("go", "build", "-ldflags="+strings.ReplaceAll(ldflags, "${VERSION}", marker), "-o", bin, "./services/ordersysctl/cmd/ordersysctl")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build with the Dockerfile's -ldflags: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "ordersysctl "+marker+" ") {
		t.Fatalf("a binary linked with the Dockerfile's -ldflags (VERSION=%s) says %q (%v): the version is not stamped", marker, out, err)
	}
}

// packageDir returns the folder of the import path pkg in the workspace's modules.
func packageDir(t *testing.T, root, pkg string) (string, bool) {
	t.Helper()
	for _, mod := range workspaceModules(t, root) {
		raw, err := os.ReadFile(filepath.Join(root, mod, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		path := ""
		for _, line := range strings.Split(string(raw), "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
				path = strings.Trim(strings.TrimSpace(rest), `"`)
				break
			}
		}
		if rest, ok := strings.CutPrefix(pkg, path); ok && (rest == "" || strings.HasPrefix(rest, "/")) {
			return filepath.Join(root, mod, filepath.FromSlash(rest)), true
		}
	}
	return "", false
}

// stringVar returns nil when the package in dir declares a package-level variable name of
// type string, without a value or with a string literal (what the linker's -X can set).
func stringVar(dir, name string) error {
	pkgs, err := parser.ParseDir(token.NewFileSet(), dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		return err
	}
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, decl := range f.Decls {
				gd, ok := decl.(*ast.GenDecl)
				if !ok || gd.Tok != token.VAR {
					continue
				}
				for _, spec := range gd.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if n.Name != name {
							continue
						}
						typ, _ := vs.Type.(*ast.Ident)
						var lit *ast.BasicLit
						if i < len(vs.Values) {
							lit, _ = vs.Values[i].(*ast.BasicLit)
						}
						switch {
						case typ != nil && typ.Name == "string" && len(vs.Values) == 0:
							return nil
						case lit != nil && lit.Kind == token.STRING:
							return nil
						}
						return errVar(name + " is not a string variable without a value or with a string literal")
					}
				}
			}
		}
	}
	return errVar("no package-level variable " + name + " in " + dir)
}

type errVar string

func (e errVar) Error() string { return string(e) }
