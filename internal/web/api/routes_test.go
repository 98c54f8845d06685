package api

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// apiPattern matches a route pattern under /api/v1, with or without a
// method: "GET /api/v1/targets", "/api/v1/".
var apiPattern = regexp.MustCompile(`^([A-Z]+ +)?(\S*)/api/v1(/|$)`)

// mountedWhole is the one registration under /api/v1 outside this
// package: internal/web hands the whole of /api/v1 to Handler.
var mountedWhole = map[string]string{"internal/web": "/api/v1/"}

// This package owns all of /api/v1 (issue 12, problem 4: internal/web and
// internal/api both served /api/v1/observations, with different rules).
// The test reads every Go file of the module but the tests and this
// package's own, and fails on a route pattern under /api/v1 written
// anywhere else: given to a Handle, HandleFunc or handle call, or spelt
// with a method ("GET /api/v1/..."), whatever it is given to. The
// exception is internal/web's mount of the whole prefix on Handler.
func TestNoOtherPackageRegistersAnAPIRoute(t *testing.T) {
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("the module root is not at %s: %v", root, err)
	}
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if name := d.Name(); rel != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		dir := filepath.ToSlash(filepath.Dir(rel))
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || dir == "internal/web/api" {
			return nil
		}
		files++
		for _, p := range apiRoutesIn(t, path) {
			if mountedWhole[dir] == p.value {
				continue
			}
			t.Errorf("%s:%d registers %q: every route under /api/v1 is internal/web/api's (add it to api.Routes)", rel, p.line, p.value)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("only %d Go files read under %s: the walk is broken", files, root)
	}
}

type apiRoute struct {
	value string
	line  int
}

// apiRoutesIn returns the route patterns under /api/v1 that the file
// registers or spells with a method.
func apiRoutesIn(t *testing.T, path string) []apiRoute {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []apiRoute
	lit := func(e ast.Expr) (string, bool) {
		b, ok := e.(*ast.BasicLit)
		if !ok || b.Kind != token.STRING {
			return "", false
		}
		v, err := strconv.Unquote(b.Value)
		return v, err == nil
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			name := ""
			switch fn := n.Fun.(type) {
			case *ast.SelectorExpr:
				name = fn.Sel.Name
			case *ast.Ident:
				name = fn.Name
			}
			if len(n.Args) == 0 || !(strings.EqualFold(name, "handle") || strings.EqualFold(name, "handlefunc")) {
				return true
			}
			if v, ok := lit(n.Args[0]); ok && apiPattern.MatchString(v) {
				out = append(out, apiRoute{v, fset.Position(n.Pos()).Line})
			}
		case *ast.BasicLit:
			if v, ok := lit(n); ok {
				if m := apiPattern.FindStringSubmatch(v); m != nil && m[1] != "" && m[2] == "" {
					out = append(out, apiRoute{v, fset.Position(n.Pos()).Line})
				}
			}
		}
		return true
	})
	// A registration with a method is found twice (the call, the
	// literal): once is enough.
	seen := map[apiRoute]bool{}
	uniq := out[:0]
	for _, r := range out {
		if !seen[r] {
			seen[r] = true
			uniq = append(uniq, r)
		}
	}
	return uniq
}
