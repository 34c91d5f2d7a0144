// Package codeshape holds the job to a shape a reader can follow: no function in the code that
// litemaas-sync links may run over maxBodyLines lines. A long function is split into named steps, so
// the list of steps reads as what the function does.
package codeshape

import (
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	// maxBodyLines bounds a function's body, from its opening brace to its closing one, both included.
	maxBodyLines = 80
	module       = "github.com/litemaas-gitops/litemaas-gitops"
	job          = module + "/cmd/litemaas-sync"
)

// pkg is the part of `go list -json` this test reads.
type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	CgoFiles   []string
}

// jobPackages lists this module's packages that litemaas-sync links, its own main package included,
// as the go command resolves them (build tags and all), so a package added to the job is covered at
// once.
func jobPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-json=ImportPath,Dir,GoFiles,CgoFiles", job).Output()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		t.Fatalf("go list -deps %s: %v\n%s", job, err, exitErr.Stderr)
	}
	require.NoError(t, err, "go list -deps %s", job)
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err, "decoding go list's output")
		}
		if p.ImportPath == module || strings.HasPrefix(p.ImportPath, module+"/") {
			pkgs = append(pkgs, p)
		}
	}
	return pkgs
}

// longFunction is a function whose body is over the limit.
type longFunction struct {
	pos   token.Position
	name  string
	lines int
}

func (f longFunction) String() string {
	return fmt.Sprintf("%s:%d: %s is %d lines long (limit %d): split it into named steps", f.pos.Filename, f.pos.Line, f.name, f.lines, maxBodyLines)
}

// longFunctions parses one Go file and returns its function declarations whose body is over max
// lines. Function literals count as part of the function holding them: a closure is read in place.
func longFunctions(fset *token.FileSet, file string, max int) ([]longFunction, error) {
	f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", file, err)
	}
	var long []longFunction
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		lines := fset.Position(fn.Body.Rbrace).Line - fset.Position(fn.Body.Lbrace).Line + 1
		if lines > max {
			long = append(long, longFunction{pos: fset.Position(fn.Pos()), name: funcName(fn), lines: lines})
		}
	}
	return long, nil
}

// funcName is a declaration's name as a reader searches for it: Recv.Name for a method.
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	t := fn.Recv.List[0].Type
	if star, ok := t.(*ast.StarExpr); ok {
		t = star.X
	}
	switch r := t.(type) {
	case *ast.IndexExpr:
		t = r.X
	case *ast.IndexListExpr:
		t = r.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + fn.Name.Name
	}
	return fn.Name.Name
}

func TestJobFunctionsAreShort(t *testing.T) {
	pkgs := jobPackages(t)
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	require.NotEmpty(t, pkgs, "go list found none of this module's packages under %s", job)
	fset := token.NewFileSet()
	files := 0
	for _, p := range pkgs {
		// GoFiles and CgoFiles are the package's non-test files for this build.
		for _, name := range append(append([]string{}, p.GoFiles...), p.CgoFiles...) {
			long, err := longFunctions(fset, filepath.Join(p.Dir, name), maxBodyLines)
			require.NoError(t, err)
			files++
			for _, f := range long {
				// Named from the repository's root, as a reader opens it.
				if rel, err := filepath.Rel(root, f.pos.Filename); err == nil {
					f.pos.Filename = rel
				}
				t.Error(f)
			}
		}
	}
	require.Greater(t, files, len(pkgs)-1, "fewer files than packages were read")
}

// The check itself: a body of maxBodyLines lines passes, one line more fails, and methods are named
// with their receiver.
func TestLongFunctions(t *testing.T) {
	body := func(n int) string { return strings.Repeat("\t_ = 0\n", n-2) }
	src := "package p\n\nfunc ok() {\n" + body(maxBodyLines) + "}\n\ntype T[K any] struct{}\n\nfunc (t *T[K]) tooLong() {\n" + body(maxBodyLines+1) + "}\n"
	file := filepath.Join(t.TempDir(), "p.go")
	require.NoError(t, writeFile(file, src))
	long, err := longFunctions(token.NewFileSet(), file, maxBodyLines)
	require.NoError(t, err)
	require.Len(t, long, 1)
	assert.Equal(t, "T.tooLong", long[0].name)
	assert.Equal(t, maxBodyLines+1, long[0].lines)
	// package, blank, ok's maxBodyLines lines, blank, type, blank: tooLong starts on the next line.
	wantLine := 2 + maxBodyLines + 3 + 1
	assert.Equal(t, wantLine, long[0].pos.Line)
	assert.Contains(t, long[0].String(), fmt.Sprintf("p.go:%d: T.tooLong is %d lines long", wantLine, maxBodyLines+1))
}

func writeFile(name, data string) error { return os.WriteFile(name, []byte(data), 0o644) }
