package check

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The services' configuration is read from their source, not by importing them (this module
// imports none of the services): every struct type reachable from a binary's configuration is
// parsed with go/parser, and its env:"ORDERSYS_..." tags are what the binary reads.

// modulePrefix is the import path prefix of the repository's modules (go.work).
const modulePrefix = "github.com/ordersys/ordersys/"

// envVar is one env-tagged field of a configuration struct.
type envVar struct {
	Name     string
	Default  string // the default:"..." tag ("" when none)
	Secret   bool   // secret:"true"
	Declared string // where: package folder and type, e.g. pkg/config.CQL
}

// goPackage is one parsed package: its struct types and, per type, the imports of its file.
type goPackage struct {
	dir     string // repository-relative folder
	structs map[string]*ast.StructType
	imports map[string]map[string]string // type name → import name → import path
	deps    []string                     // import paths of the package's non-test files
	consts  map[string]string            // string constants declared with a literal value
}

// sourceTree parses Go packages of the repository on demand (non-test files only).
type sourceTree struct {
	t    *testing.T
	root string
	pkgs map[string]*goPackage // by repository-relative folder
}

func newSourceTree(t *testing.T) *sourceTree {
	return &sourceTree{t: t, root: repoRoot(t), pkgs: map[string]*goPackage{}}
}

// pkg parses the package in the repository-relative folder dir.
func (st *sourceTree) pkg(dir string) *goPackage {
	if p, ok := st.pkgs[dir]; ok {
		return p
	}
	p := &goPackage{dir: dir, structs: map[string]*ast.StructType{}, imports: map[string]map[string]string{},
		consts: map[string]string{}}
	st.pkgs[dir] = p
	entries, err := os.ReadDir(filepath.Join(st.root, dir))
	if err != nil {
		st.t.Fatalf("package %s: %v", dir, err)
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(st.root, dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			st.t.Fatal(err)
		}
		imports := map[string]string{}
		for _, im := range f.Imports {
			path, _ := strconv.Unquote(im.Path.Value)
			name := filepath.Base(path)
			if im.Name != nil {
				name = im.Name.Name
			}
			imports[name] = path
			p.deps = append(p.deps, path)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if ok && gd.Tok == token.CONST {
				for _, spec := range gd.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if i < len(vs.Values) {
							if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
								p.consts[name.Name], _ = strconv.Unquote(lit.Value)
							}
						}
					}
				}
			}
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				if s, ok := ts.Type.(*ast.StructType); ok {
					p.structs[ts.Name.Name] = s
					p.imports[ts.Name.Name] = imports
				}
			}
		}
	}
	return p
}

// vars returns the env-tagged fields of struct typ of package p, recursing like pkg/config's
// Load into untagged fields whose type is a struct of this repository (embedded or named).
func (st *sourceTree) vars(p *goPackage, typ string) []envVar {
	s, ok := p.structs[typ]
	if !ok {
		return nil
	}
	var out []envVar
	for _, f := range s.Fields.List {
		var tag reflect.StructTag
		if f.Tag != nil {
			raw, _ := strconv.Unquote(f.Tag.Value)
			tag = reflect.StructTag(raw)
		}
		if name, ok := tag.Lookup("env"); ok {
			if name != "" {
				secret, _ := strconv.ParseBool(tag.Get("secret"))
				out = append(out, envVar{Name: name, Default: tag.Get("default"), Secret: secret, Declared: p.dir + "." + typ})
			}
			continue
		}
		if len(f.Names) > 0 && !f.Names[0].IsExported() {
			continue
		}
		expr := f.Type
		if star, ok := expr.(*ast.StarExpr); ok {
			expr = star.X
		}
		switch x := expr.(type) {
		case *ast.Ident:
			out = append(out, st.vars(p, x.Name)...)
		case *ast.SelectorExpr:
			pkgName, ok := x.X.(*ast.Ident)
			if !ok {
				continue
			}
			if path, ok := p.imports[typ][pkgName.Name]; ok && strings.HasPrefix(path, modulePrefix) {
				out = append(out, st.vars(st.pkg(strings.TrimPrefix(path, modulePrefix)), x.Sel.Name)...)
			}
		}
	}
	return out
}

// binaryVars returns the variables the binary whose main package is in dir reads: the env tags
// of every struct type declared in that package or in a package of the same module it imports
// (directly or not), following struct fields into pkg/config and the like. A struct is counted
// only through the tags it reaches, so a type with none adds nothing.
func (st *sourceTree) binaryVars(dir string) []envVar {
	module := strings.Join(strings.SplitN(dir, "/", 3)[:2], "/") // services/<svc>
	seen := map[string]bool{}
	var out []envVar
	var visit func(dir string)
	visit = func(dir string) {
		if seen[dir] {
			return
		}
		seen[dir] = true
		p := st.pkg(dir)
		names := make([]string, 0, len(p.structs))
		for n := range p.structs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			out = append(out, st.vars(p, n)...)
		}
		for _, dep := range p.deps {
			if rel, ok := strings.CutPrefix(dep, modulePrefix); ok && strings.HasPrefix(rel, module+"/") {
				visit(rel)
			}
		}
	}
	visit(dir)
	return out
}

// varsByBinary maps every binary of the contract to the variables (by name) its config reads.
func varsByBinary(t *testing.T, c contract) map[string]map[string]envVar {
	st := newSourceTree(t)
	out := map[string]map[string]envVar{}
	for bin, dir := range c.binaries() {
		out[bin] = map[string]envVar{}
		for _, v := range st.binaryVars(dir) {
			if prev, dup := out[bin][v.Name]; dup && prev.Declared != v.Declared {
				t.Errorf("%s: %s is read by two fields (%s and %s)", bin, v.Name, prev.Declared, v.Declared)
			}
			out[bin][v.Name] = v
		}
	}
	return out
}

// TestContractMatchesConfigStructs: for each binary, the env:"ORDERSYS_..." tags of its
// configuration structs are exactly the variables service-env.yaml lists for it (common, env and
// optional for a service; env and optional for a job), and the tags marked secret:"true" are the
// yaml's secret list.
func TestContractMatchesConfigStructs(t *testing.T) {
	c := loadContract(t)
	vars := varsByBinary(t, c)
	secrets := map[string]bool{}
	for _, bin := range slices.Sorted(maps.Keys(vars)) {
		t.Run(bin, func(t *testing.T) {
			read := vars[bin]
			if len(read) == 0 {
				t.Fatalf("no env-tagged configuration found for %s in %s", bin, c.binaries()[bin])
			}
			listed := c.reads(bin)
			for name, v := range read {
				if !strings.HasPrefix(name, "ORDERSYS_") {
					t.Errorf("%s (%s): variable outside the ORDERSYS_ namespace", name, v.Declared)
				}
				if !slices.Contains(listed, name) {
					t.Errorf("%s is read by %s (%s) but listed in none of its lists in service-env.yaml (env: the chart and compose must set it; optional: it has a default and may stay unset)",
						name, bin, v.Declared)
				}
				if v.Secret {
					secrets[name] = true
				}
			}
			for _, name := range listed {
				if _, ok := read[name]; !ok {
					t.Errorf("service-env.yaml lists %s for %s, but no configuration struct of %s reads it", name, bin, c.binaries()[bin])
				}
			}
		})
	}
	if got, want := slices.Sorted(maps.Keys(secrets)), sortedUnique(slices.Clone(c.Secret)); !slices.Equal(got, want) {
		t.Errorf("fields tagged secret:\"true\" = %v, service-env.yaml secret = %v", got, want)
	}
}
