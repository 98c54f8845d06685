package watchlist

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// goldenEntry is an Entry as the golden files show it.
type goldenEntry struct {
	Hash               string            `json:"hash"`
	Category           string            `json:"category,omitempty"`
	Severity           int               `json:"severity,omitempty"`
	Note               string            `json:"note,omitempty"`
	Name               string            `json:"name,omitempty"`
	Size               int64             `json:"size"`
	Series             string            `json:"series,omitempty"`
	VictimIdentified   *bool             `json:"victim_identified,omitempty"`
	OffenderIdentified *bool             `json:"offender_identified,omitempty"`
	Extra              map[string]string `json:"extra,omitempty"`
	Line               int               `json:"line,omitempty"`
	Path               string            `json:"path,omitempty"`
}

type goldenResult struct {
	Format        Format        `json:"format"`
	SchemaVersion string        `json:"schema_version,omitempty"`
	Duplicates    int           `json:"duplicates"`
	Entries       []goldenEntry `json:"entries"`
	Rejected      []Rejected    `json:"rejected,omitempty"`
	Error         string        `json:"error,omitempty"`
}

func goldenOf(res *Result, err error) goldenResult {
	g := goldenResult{Entries: []goldenEntry{}}
	if err != nil {
		g.Error = err.Error()
	}
	if res == nil {
		return g
	}
	g.Format, g.SchemaVersion, g.Duplicates, g.Rejected = res.Format, res.SchemaVersion, res.Duplicates, res.Rejected
	for _, e := range res.Entries {
		text, _ := e.Hash.MarshalText()
		g.Entries = append(g.Entries, goldenEntry{
			Hash: string(text), Category: e.Category, Severity: e.Severity, Note: e.Note, Name: e.Name,
			Size: e.Size, Series: e.Series, VictimIdentified: e.VictimIdentified,
			OffenderIdentified: e.OffenderIdentified, Extra: e.Extra, Line: e.Pos.Line, Path: e.Pos.Path,
		})
	}
	return g
}

// TestParseGolden parses each input under testdata/golden and compares the
// result with the .json beside it. go test ./internal/watchlist -update
// rewrites the .json files.
func TestParseGolden(t *testing.T) {
	tests := []struct {
		file string
		opt  ParseOptions
	}{
		{"text-mixed.txt", ParseOptions{Category: "local-1"}},
		{"text-md5.txt", ParseOptions{Kind: hashkind.MD5}},
		{"text-invalid.txt", ParseOptions{SkipInvalid: true}},
		{"sha1sum.txt", ParseOptions{}},
		{"bsd.txt", ParseOptions{}},
		{"bsd.txt", ParseOptions{}},
		{"list.csv", ParseOptions{}},
		{"multi.csv", ParseOptions{}},
		{"hashdeep.txt", ParseOptions{Category: "1"}},
		{"vics-1.3.json", ParseOptions{}},
		{"vics-2.0-cases.json", ParseOptions{}},
		{"vics-2.0-media.json", ParseOptions{}},
		{"links.magnet", ParseOptions{}},
		{"links.ed2k", ParseOptions{}},
		{"rhash.magnet", ParseOptions{}},
		{"rhash.ed2k", ParseOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", "golden", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			opt := tt.opt
			opt.File = tt.file
			res, err := Parse(bytes.NewReader(in), opt)
			got, jerr := json.MarshalIndent(goldenOf(res, err), "", "  ")
			if jerr != nil {
				t.Fatal(jerr)
			}
			got = append(got, '\n')
			want := filepath.Join("testdata", "golden", tt.file+".golden.json")
			if *update {
				if err := os.WriteFile(want, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			wantBytes, err := os.ReadFile(want)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/watchlist -update)", err)
			}
			if !bytes.Equal(got, wantBytes) {
				t.Fatalf("Parse(%s) differs from %s (run with -update if the change is intended):\n%s", tt.file, want, got)
			}
		})
	}
}
