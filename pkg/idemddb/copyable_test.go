package idemddb_test

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestExamplesCopyable: the library's Examples (every example_test.go in
// this module) can be copied into a user's code as they stand. They import
// nothing of this repository outside the library module (no
// ddblocal/ddbtest), use no package-level name of the package's other test
// files (a moto server started in TestMain, a fixture), and each (as every
// Example of the module's other test files) has an Output comment, so go
// test runs it.
func TestExamplesCopyable(t *testing.T) {
	const module = "github.com/acme/idemcheckout/"
	const library = module + "pkg/idemddb"
	examples := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		fset := token.NewFileSet()
		hidden := map[string]bool{} // package-level names of the other test files
		var exampleFiles []*ast.File
		var names []string
		matches, _ := filepath.Glob(filepath.Join(path, "*_test.go"))
		for _, name := range matches {
			f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
			if err != nil {
				return err
			}
			if filepath.Base(name) == "example_test.go" {
				exampleFiles = append(exampleFiles, f)
				names = append(names, name)
				continue
			}
			for _, ex := range doc.Examples(f) {
				examples++
				if ex.Output == "" && !ex.EmptyOutput {
					t.Errorf("%s: Example%s has no Output comment (go test compiles it but does not run it)", name, ex.Name)
				}
			}
			for _, decl := range f.Decls {
				switch decl := decl.(type) {
				case *ast.FuncDecl:
					if decl.Recv == nil {
						hidden[decl.Name.Name] = true
					}
				case *ast.GenDecl:
					for _, spec := range decl.Specs {
						switch spec := spec.(type) {
						case *ast.ValueSpec:
							for _, n := range spec.Names {
								hidden[n.Name] = true
							}
						case *ast.TypeSpec:
							hidden[spec.Name.Name] = true
						}
					}
				}
			}
		}
		for i, f := range exampleFiles {
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if strings.HasPrefix(p, module) && p != library && !strings.HasPrefix(p, library+"/") {
					t.Errorf("%s imports %s, outside the library module", names[i], p)
				}
				if strings.Contains(p, "/internal/") || strings.HasSuffix(p, "/internal") {
					t.Errorf("%s imports %s, an internal package a user cannot import", names[i], p)
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				// An identifier the file does not resolve itself is a
				// package-level name of another file (or a builtin).
				if id, ok := n.(*ast.Ident); ok && id.Obj == nil && hidden[id.Name] {
					t.Errorf("%s: %s uses %s, declared in another test file", names[i], fset.Position(id.Pos()), id.Name)
				}
				return true
			})
			for _, ex := range doc.Examples(f) {
				examples++
				if ex.Output == "" && !ex.EmptyOutput {
					t.Errorf("%s: Example%s has no Output comment (go test compiles it but does not run it)", names[i], ex.Name)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if examples < 10 {
		t.Fatalf("found %d examples, want the library's (at least 10)", examples)
	}
}
