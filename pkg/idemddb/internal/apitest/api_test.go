// Package apitest holds the library's API golden test: the exported names
// of each public package, compared with the checked-in pkg/idemddb/api.txt,
// so the surface cannot grow (or shrink) by accident.
package apitest

import (
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite pkg/idemddb/api.txt from the source")

// publicPackages are the library's public packages, relative to the module
// root (pkg/idemddb); internal packages do not count.
var publicPackages = []string{".", "apigw", "batch", "ddbmem", "idemhttp"}

// moduleRoot is pkg/idemddb, seen from this test's directory.
const moduleRoot = "../.."

// TestAPI: the exported top-level names of the public packages (types,
// functions, methods on exported types, variables, constants; struct
// fields not counted) are exactly those listed in api.txt, each of which
// API.md justifies.
func TestAPI(t *testing.T) {
	var got []string
	for _, dir := range publicPackages {
		names, err := exportedNames(filepath.Join(moduleRoot, dir))
		if err != nil {
			t.Fatal(err)
		}
		pkg := "idemddb"
		if dir != "." {
			pkg = dir
		}
		for _, n := range names {
			got = append(got, pkg+" "+n)
		}
	}
	text := "# The exported names of the library's public packages, one per line:\n" +
		"# <package> <Name> or <package> <Type>.<Method>. Checked by\n" +
		"# internal/apitest (TestAPI); justified in API.md.\n" +
		strings.Join(got, "\n") + "\n"
	path := filepath.Join(moduleRoot, "api.txt")
	if *update {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it: cd pkg/idemddb && go test ./internal/apitest -run TestAPI -update)", err)
	}
	want := listed(string(b))
	added, removed := diff(got, want)
	if len(added) > 0 || len(removed) > 0 {
		t.Errorf("the exported API differs from api.txt:\n  added:   %v\n  removed: %v\n"+
			"If intended, justify the names in pkg/idemddb/API.md and update api.txt with\n"+
			"  cd pkg/idemddb && go test ./internal/apitest -run TestAPI -update", added, removed)
	}
}

// TestAPIJustified: every name in api.txt is named in API.md, the
// justification of the surface.
func TestAPIJustified(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(moduleRoot, "api.txt"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(moduleRoot, "API.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := splitSections(string(doc))
	for _, line := range listed(string(b)) {
		pkg, name, _ := strings.Cut(line, " ")
		if !mentions(sections[pkg], name) {
			t.Errorf("%s.%s is in api.txt but not in API.md's section %q", pkg, name, "## "+pkg)
		}
	}
}

// listed returns the non-comment, non-empty lines of api.txt.
func listed(text string) []string {
	var out []string
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

// diff returns the names in got and not in want, and those in want and
// not in got.
func diff(got, want []string) (added, removed []string) {
	for _, g := range got {
		if !slices.Contains(want, g) {
			added = append(added, g)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			removed = append(removed, w)
		}
	}
	return added, removed
}

// splitSections maps each "## <package>" heading of API.md to its text.
func splitSections(doc string) map[string]string {
	out := map[string]string{}
	cur := ""
	for line := range strings.SplitSeq(doc, "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			cur = strings.Fields(h + " x")[0]
			continue
		}
		out[cur] += line + "\n"
	}
	return out
}

// mentions reports whether text names name as a code span (`Name`, or for
// a method `Type.Method`).
func mentions(text, name string) bool {
	return strings.Contains(text, "`"+name+"`") || strings.Contains(text, "`"+name+"(")
}

// exportedNames lists the exported top-level names of the package in dir
// (tests excluded), sorted: Name for types, functions, variables and
// constants, Type.Method for exported methods of exported types.
func exportedNames(dir string) ([]string, error) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		names = append(names, fileNames(f)...)
	}
	slices.Sort(names)
	return names, nil
}

// fileNames lists the exported top-level names declared in one file.
func fileNames(f *ast.File) []string {
	var names []string
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() {
				continue
			}
			if d.Recv == nil {
				names = append(names, d.Name.Name)
			} else if recv := receiverType(d.Recv.List[0].Type); ast.IsExported(recv) {
				names = append(names, recv+"."+d.Name.Name)
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() {
						names = append(names, s.Name.Name)
					}
				case *ast.ValueSpec:
					for _, id := range s.Names {
						if id.IsExported() {
							names = append(names, id.Name)
						}
					}
				}
			}
		}
	}
	return names
}

// receiverType names a method's receiver type, without pointer or type
// parameters.
func receiverType(x ast.Expr) string {
	for {
		switch t := x.(type) {
		case *ast.StarExpr:
			x = t.X
		case *ast.IndexExpr:
			x = t.X
		case *ast.IndexListExpr:
			x = t.X
		case *ast.Ident:
			return t.Name
		default:
			return ""
		}
	}
}
