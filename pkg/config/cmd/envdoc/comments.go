package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// fieldKey names a struct field: import path of its package, struct type, field.
type fieldKey struct{ pkg, typ, field string }

// fieldDocs returns the doc comment, as one line of text, of every field the binaries'
// variables are declared by. The packages are found with go list (in the workspace, wherever
// they are) and parsed with go/parser. A field without a comment of its own shares the comment
// of the field above it (`TLSCertFile and TLSKeyFile are ...`).
func fieldDocs(root string, bins []binary) (map[fieldKey]string, error) {
	var pkgs []string
	for _, b := range bins {
		for _, v := range b.help.Variables {
			if !slices.Contains(pkgs, v.Package) {
				pkgs = append(pkgs, v.Package)
			}
		}
	}
	listed, err := goCmd(root, append([]string{"list", "-f", "{{.ImportPath}}\t{{.Dir}}"}, pkgs...)...)
	if err != nil {
		return nil, err
	}
	docs := map[fieldKey]string{}
	for line := range strings.Lines(listed) {
		path, dir, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if !ok {
			continue
		}
		if err := packageDocs(path, dir, docs); err != nil {
			return nil, err
		}
	}
	for _, b := range bins {
		for _, v := range b.help.Variables {
			if docs[fieldKey{v.Package, v.Struct, v.Field}] == "" {
				return nil, fmt.Errorf("%s: field %s.%s.%s (%s) has no doc comment: say what the variable does",
					b.pkg, v.Package, v.Struct, v.Field, v.Name)
			}
		}
	}
	return docs, nil
}

// packageDocs adds the field comments of every struct type of the package in dir (non-test
// files) to docs.
func packageDocs(path, dir string, docs map[fieldKey]string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			if st, ok := ts.Type.(*ast.StructType); ok {
				shared := ""
				for _, fld := range st.Fields.List {
					text := oneLine(fld.Doc)
					if text == "" {
						text = oneLine(fld.Comment)
					}
					if text == "" {
						text = shared
					}
					shared = text
					for _, id := range fld.Names {
						docs[fieldKey{path, ts.Name.Name, id.Name}] = text
					}
				}
			}
			return false
		})
	}
	return nil
}

// oneLine is a comment group's text as one line.
func oneLine(g *ast.CommentGroup) string {
	if g == nil {
		return ""
	}
	return strings.Join(strings.Fields(g.Text()), " ")
}
