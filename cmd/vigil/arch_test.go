package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// pipelineOrder is the order in which docs/architecture.md maps the
// directories under internal/: the order data flows (DESIGN.md, "Layout"),
// the lab and the test switch last. `ls internal/` holds exactly these.
var pipelineOrder = []string{
	"config",
	"agency", "bencode", "hashkind", "digest", "hasher", "watchlist", "match",
	"observe", "bep42", "own",
	"scope", "netlimit", "timesync",
	"sensor",
	"bus",
	"ingest", "geo", "jurisdiction", "pipeline",
	"store",
	"analysis", "figures", "evidence", "casework", "alerts", "notify", "retention",
	"isp",
	"audit", "access",
	"webviews", "web",
	"lab",
	"testenv",
}

// archRow matches a row of the package table: its first cell's paths.
var archRow = regexp.MustCompile("^\\| (`[^|]+`) \\|")

// architecturePackages reads the package table of docs/architecture.md:
// each path in its first column, in order; "`.../x`" names a sibling of
// the path before it.
func architecturePackages(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	inTable := false
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "| package |") {
			inTable = true
			continue
		}
		if !inTable || strings.HasPrefix(line, "| ---") {
			continue
		}
		m := archRow.FindStringSubmatch(line)
		if m == nil {
			break // the table's end
		}
		prev := ""
		for _, cell := range strings.Split(m[1], ",") {
			p := strings.Trim(strings.TrimSpace(cell), "`")
			if rest, ok := strings.CutPrefix(p, ".../"); ok && prev != "" {
				p = prev[:strings.LastIndex(prev, "/")+1] + rest
			}
			paths = append(paths, p)
			prev = p
		}
	}
	return paths
}

// TestArchitectureMapsEveryPackage checks that docs/architecture.md maps
// every package of the module once, and none that is gone, in pipeline
// order: the directories under internal/ appear in the order of
// pipelineOrder, which names exactly what `ls internal/` shows.
func TestArchitectureMapsEveryPackage(t *testing.T) {
	mod, _, order := moduleGraph(t)
	ours := map[string]bool{}
	for _, p := range order {
		if r, ok := strings.CutPrefix(p, mod+"/"); ok {
			ours[r] = true
		}
	}
	doc := architecturePackages(t)
	seen := map[string]bool{}
	for _, p := range doc {
		if seen[p] {
			t.Errorf("docs/architecture.md maps %s twice", p)
		}
		seen[p] = true
		if !ours[p] {
			t.Errorf("docs/architecture.md maps %s, which is not a package of the module", p)
		}
	}
	for _, l := range layerTable {
		for _, p := range l.pkgs {
			if !ours[p] {
				t.Errorf("the layer table names %s, which is not a package of the module", p)
			}
		}
	}
	for p := range ours {
		if !seen[p] {
			t.Errorf("%s is missing from the package table of docs/architecture.md", p)
		}
	}

	entries, err := os.ReadDir("../../internal")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	want := slices.Clone(pipelineOrder)
	slices.Sort(want)
	if !slices.Equal(dirs, want) {
		t.Errorf("ls internal/ shows %v; pipelineOrder in cmd/vigil/arch_test.go names %v: place each directory in the pipeline's order", dirs, want)
	}
	var docOrder []string
	for _, p := range doc {
		if rest, ok := strings.CutPrefix(p, "internal/"); ok {
			top, _, _ := strings.Cut(rest, "/")
			if len(docOrder) == 0 || docOrder[len(docOrder)-1] != top {
				docOrder = append(docOrder, top)
			}
		}
	}
	if !slices.Equal(docOrder, pipelineOrder) {
		t.Errorf("docs/architecture.md maps internal/'s directories in the order\n%v\nwant the pipeline's (each directory's packages together)\n%v", docOrder, pipelineOrder)
	}
}

// TestNoLongFunctions keeps every function of the program (tests aside)
// under 150 lines (issue 12), so that none grows back into the
// 190-line handlers the redesign split.
func TestNoLongFunctions(t *testing.T) {
	fset := token.NewFileSet()
	for _, root := range []string{"../../cmd", "../../internal", "../../examples"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			for _, decl := range f.Decls {
				if fd, ok := decl.(*ast.FuncDecl); ok && fd.Body != nil {
					if n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1; n > 150 {
						t.Errorf("%s: %s is %d lines long; split it (at most 150)", path, fd.Name.Name, n)
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
