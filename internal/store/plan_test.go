package store_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

// Synthetic hashes, named for the test's output: a digest of one repeated
// byte under a kind.
var names = map[hashkind.Hash]string{}

func hash(name string, k hashkind.Kind, b byte) hashkind.Hash {
	h := hashkind.MustNew(k, []byte(strings.Repeat(string([]byte{b}), k.Size())))
	names[h] = name
	return h
}

var (
	hA    = hash("a", hashkind.MD5, 0xa0)
	hB    = hash("b", hashkind.SHA1, 0x0b)
	hC    = hash("c", hashkind.SHA256, 0xc0)
	hD    = hash("d", hashkind.MD5, 0x0d)
	hE    = hash("e", hashkind.ED2K, 0xe0)
	twinS = hash("twin-sha1", hashkind.SHA1, 0x77)
	twinB = hash("twin-btih", hashkind.BTIH, 0x77) // the same 20 bytes as twinS
)

func entry(h hashkind.Hash, category string, line int) watchlist.Entry {
	return watchlist.Entry{Hash: h, Category: category, Size: -1, Pos: watchlist.Pos{File: "list.csv", Line: line}}
}

// stored is a row of the list: its id, entry and whether it is current.
func stored(row int64, e watchlist.Entry, active bool) store.StoredEntry {
	return store.StoredEntry{Row: row, Hash: e.Hash, Active: active, Digest: store.EntryDigest(&e)}
}

// summary prints a plan the way the table spells it.
func summary(p store.ImportPlan) string {
	var b strings.Builder
	r := p.Report
	if r.Unchanged {
		fmt.Fprintf(&b, "unchanged v%d", r.Version)
	} else {
		fmt.Fprintf(&b, "v%d %q entries %d +%d -%d ~%d", p.Version, p.Label, p.Entries, r.Added, r.Removed, r.Changed)
	}
	list := func(label string, n int, item func(i int) string) {
		if n == 0 {
			return
		}
		s := make([]string, n)
		for i := range s {
			s[i] = item(i)
		}
		fmt.Fprintf(&b, " %s [%s]", label, strings.Join(s, " "))
	}
	list("insert", len(p.Insert), func(i int) string { return names[p.Insert[i].Hash] + ":" + p.Insert[i].Category })
	list("update", len(p.Update), func(i int) string {
		return fmt.Sprintf("%d=%s:%s", p.Update[i].Row, names[p.Update[i].Entry.Hash], p.Update[i].Entry.Category)
	})
	list("remove", len(p.Remove), func(i int) string { return fmt.Sprint(p.Remove[i]) })
	list("history", len(p.Events), func(i int) string {
		ev := p.Events[i]
		s := ev.Action + ":" + names[ev.Hash]
		if ev.Reason != "" {
			s += "(" + ev.Reason + ")"
		}
		return s
	})
	list("samples+", len(r.AddedHashes), func(i int) string { return names[r.AddedHashes[i]] })
	list("samples-", len(r.RemovedHashes), func(i int) string { return names[r.RemovedHashes[i]] })
	return b.String()
}

func TestPlanImport(t *testing.T) {
	a, b, c, d, e := entry(hA, "1", 2), entry(hB, "1", 3), entry(hC, "2", 4), entry(hD, "2", 5), entry(hE, "3", 6)
	c9 := c
	c9.Category, c9.Note = "9", "re-graded"
	current := store.ListState{Exists: true, Version: 3}
	// The list's rows: a, b, c current; d removed by an earlier version.
	rows := []store.StoredEntry{stored(11, a, true), stored(12, b, true), stored(13, c, true), stored(14, d, false)}
	tests := []struct {
		name    string
		imp     store.ListImport
		list    store.ListState
		stored  []store.StoredEntry
		want    string // summary, or the error's text
		wantErr bool
	}{
		{name: "first import", imp: store.ListImport{Entries: []watchlist.Entry{a, b, c}},
			want: `v1 "1" entries 3 +3 -0 ~0 insert [a:1 b:1 c:2] history [added:a added:b added:c] samples+ [a b c]`},
		{name: "first import keeps the publisher's label", imp: store.ListImport{Version: "2026-11", Entries: []watchlist.Entry{a}},
			want: `v1 "2026-11" entries 1 +1 -0 ~0 insert [a:1] history [added:a] samples+ [a]`},
		{name: "new empty list is a version", imp: store.ListImport{},
			want: `v1 "1" entries 0 +0 -0 ~0`},
		{name: "duplicate line counts once", imp: store.ListImport{Entries: []watchlist.Entry{a, b, a, a}},
			want: `v1 "1" entries 2 +2 -0 ~0 insert [a:1 b:1] history [added:a added:b] samples+ [a b]`},
		{name: "one digest under two kinds is two entries", imp: store.ListImport{Entries: []watchlist.Entry{entry(twinS, "1", 2), entry(twinB, "2", 3)}},
			want: `v1 "1" entries 2 +2 -0 ~0 insert [twin-sha1:1 twin-btih:2] history [added:twin-sha1 added:twin-btih] samples+ [twin-sha1 twin-btih]`},
		{name: "conflicting duplicate fails naming the line and the hash", imp: store.ListImport{Entries: []watchlist.Entry{a, b, entry(hA, "2", 9)}},
			want: `entry 3 (list.csv line 9): md5 ` + hA.Hex() + ` is given twice with different attributes`, wantErr: true},
		{name: "conflicting duplicate of a stored entry fails", imp: store.ListImport{Entries: []watchlist.Entry{a, b, c9, c}}, list: current, stored: rows,
			want: `entry 4 (list.csv line 4): sha256 ` + hC.Hex() + ` is given twice with different attributes`, wantErr: true},
		{name: "no hash of a known kind fails", imp: store.ListImport{Entries: []watchlist.Entry{a, {Category: "1", Pos: watchlist.Pos{File: "list.csv", Line: 7}}}},
			want: `entry 2 (list.csv line 7): no hash of a known kind`, wantErr: true},
		{name: "the same content in another order is unchanged", imp: store.ListImport{Version: "reissued", SHA256: "other", Entries: []watchlist.Entry{c, b, a}},
			list: current, stored: rows, want: `unchanged v3`},
		{name: "another position is the same content", imp: store.ListImport{Entries: []watchlist.Entry{entry(hA, "1", 90), b, c}},
			list: current, stored: rows, want: `unchanged v3`},
		{name: "re-import with entries removed removes them in hash order", imp: store.ListImport{Entries: []watchlist.Entry{b}},
			list: current, stored: rows,
			want: `v4 "4" entries 1 +0 -2 ~0 remove [11 13] history [removed:a removed:c] samples- [a c]`},
		{name: "an empty import removes every current entry", imp: store.ListImport{}, list: current, stored: rows,
			want: `v4 "4" entries 0 +0 -3 ~0 remove [11 12 13] history [removed:a removed:b removed:c] samples- [a b c]`},
		{name: "an empty import of a list with nothing current is unchanged", imp: store.ListImport{},
			list: current, stored: []store.StoredEntry{stored(14, d, false)}, want: `unchanged v3`},
		{name: "a removed entry comes back on its row", imp: store.ListImport{Entries: []watchlist.Entry{a, b, c, d}}, list: current, stored: rows,
			want: `v4 "4" entries 4 +1 -0 ~0 update [14=d:2] history [added:d(back on the list)] samples+ [d]`},
		{name: "a changed entry is rewritten on its row", imp: store.ListImport{Entries: []watchlist.Entry{a, b, c9}}, list: current, stored: rows,
			want: `v4 "4" entries 3 +0 -0 ~1 update [13=c:9] history [changed:c]`},
		{name: "history: the import's order, then removals", imp: store.ListImport{Entries: []watchlist.Entry{e, c9, d}}, list: current, stored: rows,
			want: `v4 "4" entries 3 +2 -2 ~1 insert [e:3] update [13=c:9 14=d:2] remove [11 12] history [added:e changed:c added:d(back on the list) removed:a removed:b] samples+ [e d] samples- [a b]`},
		{name: "a positive list cannot become negative", imp: store.ListImport{Negative: true, Entries: []watchlist.Entry{a}}, list: current, stored: rows,
			want: `the list is positive and this import says negative (known-benign); a list cannot change sides: import it under another name`, wantErr: true},
		{name: "a benign list cannot become positive", imp: store.ListImport{Entries: []watchlist.Entry{a}},
			list: store.ListState{Exists: true, Version: 1, Negative: true}, stored: []store.StoredEntry{stored(21, a, true)},
			want: `the list is negative (known-benign) and this import says positive; a list cannot change sides: import it under another name`, wantErr: true},
		// A known-benign list suppresses the hashes it holds wherever they
		// are listed (the matcher's rule); its own import is planned like
		// any list's, whatever other lists hold.
		{name: "a new benign list holding listed hashes", imp: store.ListImport{Negative: true, Entries: []watchlist.Entry{a, b}},
			want: `v1 "1" entries 2 +2 -0 ~0 insert [a:1 b:1] history [added:a added:b] samples+ [a b]`},
		{name: "a benign list re-imported with one suppression lifted", imp: store.ListImport{Negative: true, Entries: []watchlist.Entry{b}},
			list: store.ListState{Exists: true, Version: 1, Negative: true}, stored: []store.StoredEntry{stored(21, a, true), stored(22, b, true)},
			want: `v2 "2" entries 1 +0 -1 ~0 remove [21] history [removed:a] samples- [a]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.imp.Name = "national"
			p, err := store.PlanImport(tt.imp, tt.list, tt.stored, store.PlanOptions{})
			switch {
			case tt.wantErr && err == nil:
				t.Fatalf("plan %s, want the error %q", summary(p), tt.want)
			case tt.wantErr:
				if err.Error() != tt.want {
					t.Fatalf("error %q\nwant  %q", err, tt.want)
				}
			case err != nil:
				t.Fatalf("error %v, want %s", err, tt.want)
			default:
				if got := summary(p); got != tt.want {
					t.Fatalf("plan %s\nwant %s", got, tt.want)
				}
				if p.Report.List != "national" {
					t.Fatalf("report names list %q", p.Report.List)
				}
			}
		})
	}
}

// A change's history says what changed once the old values are read; a
// re-added entry's says it is back, whatever its old values.
func TestPlanDescribeReadsTheOldValues(t *testing.T) {
	a, c := entry(hA, "1", 2), entry(hC, "2", 3)
	c9 := c
	c9.Category, c9.Note = "9", "re-graded"
	p, err := store.PlanImport(store.ListImport{Name: "n", Entries: []watchlist.Entry{a, c9}}, store.ListState{Exists: true, Version: 1},
		[]store.StoredEntry{stored(1, a, false), stored(2, c, true)}, store.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(p.ChangedRows()); got != "[2]" {
		t.Fatalf("changed rows %s, want [2]", got)
	}
	p.Describe(map[int64]*watchlist.Entry{1: &a, 2: &c})
	if got, want := summary(p), `v2 "2" entries 2 +1 -0 ~1 update [1=a:1 2=c:9] history [added:a(back on the list) changed:c(category "2" → "9"; note "" → "re-graded")] samples+ [a]`; got != want {
		t.Fatalf("plan %s\nwant %s", got, want)
	}
}

// A store's check sees each entry the import writes, in order, and no
// other; its refusal fails the import before a later error would.
func TestPlanCheckSeesWhatIsWritten(t *testing.T) {
	a, b, c, e := entry(hA, "1", 2), entry(hB, "1", 3), entry(hC, "2", 4), entry(hE, "3", 5)
	b2 := b
	b2.Category = "2"
	var seen []string
	refuse := errors.New("holds a NUL byte")
	opt := store.PlanOptions{Check: func(x *watchlist.Entry) error {
		seen = append(seen, names[x.Hash])
		if x.Hash == hE {
			return refuse
		}
		return nil
	}}
	list, rows := store.ListState{Exists: true, Version: 1}, []store.StoredEntry{stored(1, a, true), stored(2, b, true), stored(3, c, false)}
	if _, err := store.PlanImport(store.ListImport{Entries: []watchlist.Entry{a, b2, c}}, list, rows, opt); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(seen, " "); got != "b c" {
		t.Fatalf("checked %q, want the changed and the re-added entries: \"b c\"", got)
	}
	seen = nil
	conflict := entry(hA, "7", 9)
	_, err := store.PlanImport(store.ListImport{Entries: []watchlist.Entry{a, e, conflict}}, list, rows, opt)
	if !errors.Is(err, refuse) || err.Error() != "entry 2 (list.csv line 5): ed2k "+hE.Hex()+": holds a NUL byte" {
		t.Fatalf("error %v, want the check's refusal of entry 2 named", err)
	}
}

// The report counts every change and samples at most 200 of each kind.
func TestPlanSamplesAreBounded(t *testing.T) {
	var es []watchlist.Entry
	for i := range 450 {
		es = append(es, watchlist.Entry{Hash: hashkind.MustNew(hashkind.MD5, []byte(fmt.Sprintf("%016d", i))), Size: -1})
	}
	p, err := store.PlanImport(store.ListImport{Entries: es}, store.ListState{}, nil, store.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := p.Report; r.Added != 450 || len(r.AddedHashes) != 200 || r.AddedHashes[199] != es[199].Hash || len(p.Insert) != 450 {
		t.Fatalf("added %d, %d samples, %d inserts; want 450, the first 200, 450", r.Added, len(r.AddedHashes), len(p.Insert))
	}
	var rows []store.StoredEntry
	for i := range es {
		rows = append(rows, stored(int64(i+1), es[i], true))
	}
	p, err = store.PlanImport(store.ListImport{Entries: es[:10]}, store.ListState{Exists: true, Version: 1}, rows, store.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := p.Report; r.Removed != 440 || len(r.RemovedHashes) != 200 || r.RemovedHashes[0] != es[10].Hash || len(p.Remove) != 440 {
		t.Fatalf("removed %d, %d samples from %v, %d rows; want 440, 200 from the lowest hash, 440", r.Removed, len(r.RemovedHashes), r.RemovedHashes[0], len(p.Remove))
	}
}

func TestEntryDigestAndChange(t *testing.T) {
	yes := true
	a := watchlist.Entry{Category: "1", Severity: 5, Extra: map[string]string{"k": "v"}}
	b := a
	b.Pos = watchlist.Pos{File: "other.csv", Line: 3}
	if store.EntryDigest(&a) != store.EntryDigest(&b) || store.DescribeChange(&a, &b) != "" {
		t.Fatal("equal entries differ")
	}
	b.Category, b.VictimIdentified, b.Extra = "2", &yes, map[string]string{"k": "w"}
	if store.EntryDigest(&a) == store.EntryDigest(&b) {
		t.Fatal("a changed entry has the same digest")
	}
	if d := store.DescribeChange(&a, &b); d != `category "1" → "2"; victim identified "" → "true"; extra fields` {
		t.Errorf("DescribeChange = %q", d)
	}
}
