package ingest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// Ingest is the only writer of observations: outside internal/ingest and
// the stores themselves (and tests), no code of the module calls
// InsertObservations. A command that stored a file's or a bus's
// observations with its own insert would skip enrichment, metrics and
// the acknowledgement after commit.
func TestOnlyIngestInsertsObservations(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	// ingest, the stores, and the stores' contract suites (test helpers
	// that fill a store to test it).
	allowed := []string{"internal/ingest/", "internal/store/", "internal/analysis/analysistest/", "internal/access/accesstest/", "internal/audit/audittest/",
		"internal/figures/figurestest/", "internal/casework/casetest/", "internal/alerts/alertstest/", "internal/retention/retentiontest/"}
	fset := token.NewFileSet()
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(path, root+string(filepath.Separator)))
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		for _, a := range allowed {
			if strings.HasPrefix(rel, a) {
				return nil
			}
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		ast.Inspect(f, func(n ast.Node) bool {
			if c, ok := n.(*ast.CallExpr); ok {
				if sel, ok := c.Fun.(*ast.SelectorExpr); ok && strings.HasPrefix(sel.Sel.Name, "InsertObservations") {
					t.Errorf("%s: calls InsertObservations; observations are stored through ingest.Run only", fset.Position(c.Pos()))
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("looked at %d files under %s: not the module", files, root)
	}
}
