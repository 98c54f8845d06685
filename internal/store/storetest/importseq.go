package storetest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

// ImportSequence runs a fixed series of list imports on st, adversarial
// ones among them (a duplicate line, one digest under two kinds, an entry
// changed while disabled, removals and returns, a conflicting duplicate, a
// hash of no kind, a list changing sides, a list emptied, more changes
// than a report samples), and returns what each import reported or the
// error it gave, one line each. A store's own test compares this, and the
// rows the imports left in its tables, with a golden file: a change in
// what an import writes shows there, row by row.
//
// st must be new and empty; its clock should be fixed, so that the times
// it writes compare.
func ImportSequence(t *testing.T, st store.Store) string {
	t.Helper()
	ctx := context.Background()
	s := newSynth(1001)
	var log strings.Builder
	step := func(what string, imp store.ListImport) {
		t.Helper()
		rep, err := st.ImportList(ctx, imp)
		if err != nil {
			fmt.Fprintf(&log, "%s: error: %v\n", what, err)
			return
		}
		fmt.Fprintf(&log, "%s: %s\n", what, describeReport(rep))
	}

	es := append(s.entries(6), s.full())
	a, b, c, d := es[0], es[1], es[2], es[3]
	// The same digest as an SHA-1 and as a BitTorrent info-hash: two
	// entries, never one.
	sha := watchlist.Entry{Hash: s.hash(hashkind.SHA1), Category: "1", Size: -1, Name: "twin-sha1"}
	btih := watchlist.Entry{Hash: hashkind.MustNew(hashkind.BTIH, sha.Hash.Bytes()), Category: "2", Size: -1, Name: "twin-btih"}
	first := append(slices.Clone(es), es[1], sha, btih) // es[1] twice, identically
	step("first import", store.ListImport{Name: "national", Source: "lab publisher", Version: "2026-11",
		Format: watchlist.FormatCSV, SHA256: "aa", By: "analyst-1", Entries: first})

	again := slices.Clone(first)
	slices.Reverse(again)
	step("same content, another order, checksum and source", store.ListImport{Name: "national", Source: "mirror",
		Version: "2026-11b", SHA256: "bb", By: "analyst-2", Entries: again})

	c2 := c
	c2.Note, c2.Severity = "re-graded", 5
	extra := es[6]
	extra.Extra = map[string]string{"MediaID": "43"}
	more := s.entries(2)
	second := []watchlist.Entry{b, c2, d, es[4], es[5], extra, more[0], sha, more[1]} // a and btih removed
	step("second version", store.ListImport{Name: "national", By: "analyst-2", Entries: second})

	if err := st.SetDisabled(ctx, "national", b.Hash, true, "analyst-3", "false positive"); err != nil {
		t.Fatal(err)
	}
	b2 := b
	b2.Category = "3"
	third := []watchlist.Entry{a, b2, c2, d, es[4], es[5], extra, more[0], sha, more[1], btih} // a and btih back, b changed while disabled
	step("third version", store.ListImport{Name: "national", Version: "v3", By: "analyst-1", Entries: third})

	dup := d
	dup.Category = "other"
	step("conflicting duplicate", store.ListImport{Name: "national", Entries: append(slices.Clone(third), dup)})
	bad := watchlist.Entry{Category: "1", Pos: watchlist.Pos{File: "synthetic.csv", Line: 99}}
	step("no hash of a known kind", store.ListImport{Name: "national", Entries: append(slices.Clone(third[:3]), bad)})
	step("positive list made negative", store.ListImport{Name: "national", Negative: true, Entries: third})

	benign := []watchlist.Entry{{Hash: a.Hash, Category: "benign", Size: -1}, s.entries(1)[0]}
	step("benign list", store.ListImport{Name: "benign", Negative: true, Source: "platform", Entries: benign})
	step("negative list made positive", store.ListImport{Name: "benign", Entries: benign})
	step("benign list unchanged", store.ListImport{Name: "benign", Negative: true, Entries: benign})

	step("new empty list", store.ListImport{Name: "empty"})
	step("empty list again", store.ListImport{Name: "empty"})
	step("everything removed", store.ListImport{Name: "national", Entries: nil})

	big := s.entries(260)
	step("big list", store.ListImport{Name: "big", Entries: big})
	step("big list cut", store.ListImport{Name: "big", Entries: big[250:]})
	step("big list back", store.ListImport{Name: "big", Entries: big})
	return log.String()
}

func describeReport(rep store.ImportReport) string {
	hexes := func(hs []hashkind.Hash) string {
		if len(hs) > 4 {
			return fmt.Sprintf("%d from %s to %s", len(hs), hs[0], hs[len(hs)-1])
		}
		var s []string
		for _, h := range hs {
			s = append(s, h.String())
		}
		return "[" + strings.Join(s, " ") + "]"
	}
	return fmt.Sprintf("list %s version %d unchanged %v added %d removed %d changed %d added %s removed %s",
		rep.List, rep.Version, rep.Unchanged, rep.Added, rep.Removed, rep.Changed, hexes(rep.AddedHashes), hexes(rep.RemovedHashes))
}

// ImportRowsGolden is the golden file of ImportSequence and the rows it
// leaves, as a store beside storetest (store/sqlite, store/postgres)
// names it from its own folder. Both stores compare with the same file.
const ImportRowsGolden = "../storetest/testdata/import_rows.golden"

// Golden compares got with the file at path; with update it writes got
// there first.
func Golden(t *testing.T, path, got string, update bool) {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to write it)", err)
	}
	if got != string(want) {
		t.Fatalf("the output differs from %s (run the test with -update and read the diff):\n%s", path, got)
	}
}
