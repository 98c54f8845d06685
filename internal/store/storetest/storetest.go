// Package storetest is the contract every store.Store backend must keep:
// one suite of tests that the SQLite store runs against a file in a temp
// directory and the PostgreSQL store against a scratch database.
//
// It uses synthetic data only: hashes are random bytes from a seeded
// generator, file names are "synthetic-NNN.bin". It must never hold or
// fetch a real list.
package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

// Run runs the contract. open must return a new, empty store for t and
// close it when t ends (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st store.Store)
	}{
		{"ImportCreatesFirstVersion", testImportCreatesFirstVersion},
		{"VersionLabelDefaultsToNumber", testVersionLabelDefaultsToNumber},
		{"IdenticalReimportIsUnchanged", testIdenticalReimportIsUnchanged},
		{"ReimportComparesContentNotChecksum", testReimportComparesContentNotChecksum},
		{"NewVersionReportsAndRecordsDiff", testNewVersionReportsAndRecordsDiff},
		{"RemovedEntryCanComeBack", testRemovedEntryCanComeBack},
		{"ImportIsAllOrNothing", testImportIsAllOrNothing},
		{"FailedFirstImportCreatesNoList", testFailedFirstImportCreatesNoList},
		{"ImportKeepsIdenticalDuplicateOnce", testImportKeepsIdenticalDuplicateOnce},
		{"ImportRejectsConflictingDuplicate", testImportRejectsConflictingDuplicate},
		{"DisableAndEnableKeepHistory", testDisableAndEnableKeepHistory},
		{"DisabledSurvivesReimport", testDisabledSurvivesReimport},
		{"SetDisabledUnknownIsNotFound", testSetDisabledUnknownIsNotFound},
		{"NegativeListIsFlagged", testNegativeListIsFlagged},
		{"ListCannotChangeSides", testListCannotChangeSides},
		{"TrustCountsOrganisationsAndOtherLists", testTrustCountsOrganisationsAndOtherLists},
		{"ConfirmUnknownHashIsNotFound", testConfirmUnknownHashIsNotFound},
		{"LookupAcrossLists", testLookupAcrossLists},
		{"ListEntriesUnknownListIsNotFound", testListEntriesUnknownListIsNotFound},
		{"AddToListKeepsEveryEntry", testAddToListKeepsEveryEntry},
		{"ObservationsRoundTripEveryField", testObservationsRoundTripEveryField},
		{"ObservationsComeInTimeOrder", testObservationsComeInTimeOrder},
		{"ObservationsFilterSinceUntil", testObservationsFilterSinceUntil},
		{"ObservationsOfAddressExactly", testObservationsOfAddressExactly},
		{"InsertObservationsManyAcrossChunks", testInsertObservationsManyAcrossChunks},
		{"InsertObservationsAssignsMissingID", testInsertObservationsAssignsMissingID},
		{"InsertObservationsSkipsStoredID", testInsertObservationsSkipsStoredID},
		{"InsertObservationsIsAllOrNothing", testInsertObservationsIsAllOrNothing},
		{"ConcurrentWritersAndReaders", testConcurrentWritersAndReaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

// synth makes synthetic hashes and entries from a seeded generator.
type synth struct{ r *rand.Rand }

func newSynth(seed uint64) *synth {
	return &synth{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (s *synth) hash(k hashkind.Kind) hashkind.Hash {
	b := make([]byte, k.Size())
	for i := range b {
		b[i] = byte(s.r.Uint32())
	}
	return hashkind.MustNew(k, b)
}

func (s *synth) entries(n int) []watchlist.Entry {
	kinds := []hashkind.Kind{hashkind.MD5, hashkind.SHA1, hashkind.SHA256, hashkind.ED2K, hashkind.BTIH}
	out := make([]watchlist.Entry, n)
	for i := range out {
		out[i] = watchlist.Entry{
			Hash:     s.hash(kinds[i%len(kinds)]),
			Category: fmt.Sprint(1 + i%3),
			Severity: i % 6,
			Name:     fmt.Sprintf("synthetic-%03d.bin", i),
			Size:     int64(1000 + i),
			Pos:      watchlist.Pos{File: "synthetic.csv", Line: i + 2},
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// full is an entry with every attribute set.
func (s *synth) full() watchlist.Entry {
	return watchlist.Entry{
		Hash: s.hash(hashkind.SHA1), Category: "2", Severity: 4, Note: "synthetic note, \"quoted\"",
		Name: "synthetic-full.bin", Size: 123456, Series: "series-a",
		VictimIdentified: ptr(true), OffenderIdentified: ptr(false),
		Extra: map[string]string{"MediaID": "42", "Comments": "none"},
	}
}

// sameEntry compares what a store keeps of an entry: all but its position.
func sameEntry(a, b *watchlist.Entry) bool {
	tri := func(x, y *bool) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.Hash == b.Hash && a.Category == b.Category && a.Severity == b.Severity && a.Note == b.Note &&
		a.Name == b.Name && a.Size == b.Size && a.Series == b.Series &&
		tri(a.VictimIdentified, b.VictimIdentified) && tri(a.OffenderIdentified, b.OffenderIdentified) &&
		maps.Equal(a.Extra, b.Extra)
}

func importList(t *testing.T, st store.Store, imp store.ListImport) store.ImportReport {
	t.Helper()
	rep, err := st.ImportList(context.Background(), imp)
	if err != nil {
		t.Fatalf("ImportList(%s): %v", imp.Name, err)
	}
	return rep
}

func lists(t *testing.T, st store.Store) map[string]watchlist.List {
	t.Helper()
	ls, err := st.Lists(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]watchlist.List{}
	for _, l := range ls {
		out[l.Name] = l
	}
	return out
}

func listEntries(t *testing.T, st store.Store, name string) map[hashkind.Hash]watchlist.Entry {
	t.Helper()
	out := map[hashkind.Hash]watchlist.Entry{}
	err := st.ListEntries(context.Background(), name, func(e *watchlist.Entry) error {
		if _, dup := out[e.Hash]; dup {
			return fmt.Errorf("%s twice", e.Hash.Hex())
		}
		out[e.Hash] = *e
		return nil
	})
	if err != nil {
		t.Fatalf("ListEntries(%s): %v", name, err)
	}
	return out
}

// active returns the enabled current entries per list, and the lists as
// ActiveEntries gave them.
func active(t *testing.T, st store.Store) (map[string][]hashkind.Hash, map[string]watchlist.List) {
	t.Helper()
	hs := map[string][]hashkind.Hash{}
	ls := map[string]watchlist.List{}
	err := st.ActiveEntries(context.Background(), func(l *watchlist.List, e *watchlist.Entry) error {
		hs[l.Name] = append(hs[l.Name], e.Hash)
		ls[l.Name] = *l
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hs, ls
}

func history(t *testing.T, st store.Store, h hashkind.Hash) []store.EntryEvent {
	t.Helper()
	ev, err := st.History(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func actions(ev []store.EntryEvent) string {
	var s []string
	for _, e := range ev {
		s = append(s, fmt.Sprintf("%s:%s:%d", e.List, e.Action, e.Ver))
	}
	return strings.Join(s, " ")
}

func lookup(t *testing.T, st store.Store, h hashkind.Hash) map[string]store.EntryRecord {
	t.Helper()
	recs, err := st.Lookup(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.EntryRecord{}
	for _, r := range recs {
		out[r.List.Name] = r
	}
	return out
}

func testImportCreatesFirstVersion(t *testing.T, st store.Store) {
	s := newSynth(1)
	es := append(s.entries(4), s.full())
	rep := importList(t, st, store.ListImport{Name: "national", Source: "lab publisher", Version: "2026-11",
		Format: watchlist.FormatCSV, SHA256: strings.Repeat("ab", 32), By: "analyst-1", Entries: es})
	if rep.Version != 1 || rep.Unchanged || rep.Added != len(es) || rep.Removed != 0 || rep.Changed != 0 || len(rep.AddedHashes) != len(es) {
		t.Fatalf("report = %+v, want version 1 with %d added", rep, len(es))
	}
	l := lists(t, st)["national"]
	if l.Source != "lab publisher" || l.Version != "2026-11" || l.Format != watchlist.FormatCSV || l.Negative ||
		l.Entries != len(es) || l.Disabled != 0 || l.SHA256 != strings.Repeat("ab", 32) || l.Imported.IsZero() {
		t.Fatalf("Lists = %+v", l)
	}
	got := listEntries(t, st, "national")
	if len(got) != len(es) {
		t.Fatalf("ListEntries gave %d entries, want %d", len(got), len(es))
	}
	for i := range es {
		g, ok := got[es[i].Hash]
		if !ok || !sameEntry(&g, &es[i]) {
			t.Fatalf("entry %s:\ngot  %+v\nwant %+v", es[i].Hash.Hex(), g, es[i])
		}
	}
	if got, want := actions(history(t, st, es[0].Hash)), "national:added:1"; got != want {
		t.Fatalf("history = %s, want %s", got, want)
	}
	if ev := history(t, st, es[0].Hash); ev[0].By != "analyst-1" || ev[0].Time.IsZero() {
		t.Fatalf("history event = %+v, want by analyst-1 with a time", ev[0])
	}
}

func testVersionLabelDefaultsToNumber(t *testing.T, st store.Store) {
	s := newSynth(2)
	es := s.entries(3)
	importList(t, st, store.ListImport{Name: "local", Entries: es})
	if got := lists(t, st)["local"].Version; got != "1" {
		t.Fatalf("version label = %q, want \"1\"", got)
	}
	rep := importList(t, st, store.ListImport{Name: "local", Entries: es[:2]})
	if got := lists(t, st)["local"].Version; rep.Version != 2 || got != "2" {
		t.Fatalf("after a second version: report version %d, label %q; want 2, \"2\"", rep.Version, got)
	}
}

func testIdenticalReimportIsUnchanged(t *testing.T, st store.Store) {
	s := newSynth(3)
	es := append(s.entries(20), s.full())
	importList(t, st, store.ListImport{Name: "national", Version: "v1", SHA256: "aa", Entries: es})
	before := lists(t, st)["national"]

	// Another order, another file checksum and label, the same content.
	again := slices.Clone(es)
	slices.Reverse(again)
	for i := range again {
		again[i].Pos = watchlist.Pos{File: "other.txt", Line: i + 1}
	}
	again[0].Extra = maps.Clone(again[0].Extra)
	rep := importList(t, st, store.ListImport{Name: "national", Version: "v1-reissued", SHA256: "bb", Entries: again})
	if !rep.Unchanged || rep.Version != 1 || rep.Added+rep.Removed+rep.Changed != 0 {
		t.Fatalf("report = %+v, want unchanged at version 1", rep)
	}
	after := lists(t, st)["national"]
	if after.Version != before.Version || after.SHA256 != before.SHA256 || !after.Imported.Equal(before.Imported) || after.Entries != before.Entries {
		t.Fatalf("an unchanged import changed the list:\nbefore %+v\nafter  %+v", before, after)
	}
	if got := len(history(t, st, es[5].Hash)); got != 1 {
		t.Fatalf("history has %d events after an unchanged import, want 1", got)
	}
}

func testReimportComparesContentNotChecksum(t *testing.T, st store.Store) {
	s := newSynth(4)
	es := s.entries(5)
	importList(t, st, store.ListImport{Name: "national", SHA256: "same", Entries: es})
	edited := slices.Clone(es)
	edited[2].Category = "9"
	rep := importList(t, st, store.ListImport{Name: "national", SHA256: "same", Entries: edited})
	if rep.Unchanged || rep.Changed != 1 || rep.Version != 2 {
		t.Fatalf("report = %+v, want version 2 with 1 changed although the checksum is the same", rep)
	}
}

func testNewVersionReportsAndRecordsDiff(t *testing.T, st store.Store) {
	s := newSynth(5)
	es := s.entries(4) // a b c d
	importList(t, st, store.ListImport{Name: "national", Entries: es})
	a, b, c, d := es[0], es[1], es[2], es[3]
	c2 := c
	c2.Note, c2.Severity = "re-graded", 5
	e := s.entries(1)[0]
	rep := importList(t, st, store.ListImport{Name: "national", By: "analyst-2", Entries: []watchlist.Entry{b, c2, d, e}})
	if rep.Version != 2 || rep.Unchanged || rep.Added != 1 || rep.Removed != 1 || rep.Changed != 1 {
		t.Fatalf("report = %+v, want version 2: 1 added, 1 removed, 1 changed", rep)
	}
	if len(rep.AddedHashes) != 1 || rep.AddedHashes[0] != e.Hash || len(rep.RemovedHashes) != 1 || rep.RemovedHashes[0] != a.Hash {
		t.Fatalf("samples: added %v removed %v, want [%s] [%s]", rep.AddedHashes, rep.RemovedHashes, e.Hash.Hex(), a.Hash.Hex())
	}
	hs, _ := active(t, st)
	if got := len(hs["national"]); got != 4 || slices.Contains(hs["national"], a.Hash) {
		t.Fatalf("active entries %d (removed one among them: %v), want 4 without it", got, slices.Contains(hs["national"], a.Hash))
	}
	if got := lookup(t, st, a.Hash); len(got) != 0 {
		t.Fatalf("Lookup of a removed entry = %+v, want nothing", got)
	}
	if got := listEntries(t, st, "national")[c.Hash]; !sameEntry(&got, &c2) {
		t.Fatalf("changed entry = %+v, want %+v", got, c2)
	}
	if got, want := actions(history(t, st, a.Hash)), "national:added:1 national:removed:2"; got != want {
		t.Fatalf("history of the removed entry = %s, want %s", got, want)
	}
	hc := history(t, st, c.Hash)
	if got, want := actions(hc), "national:added:1 national:changed:2"; got != want {
		t.Fatalf("history of the changed entry = %s, want %s", got, want)
	}
	if hc[1].Reason == "" || hc[1].By != "analyst-2" {
		t.Fatalf("changed event = %+v, want a reason saying what changed and by analyst-2", hc[1])
	}
	if l := lists(t, st)["national"]; l.Entries != 4 || l.Version != "2" {
		t.Fatalf("list = %+v, want 4 entries at version 2", l)
	}
}

func testRemovedEntryCanComeBack(t *testing.T, st store.Store) {
	s := newSynth(6)
	es := s.entries(3)
	importList(t, st, store.ListImport{Name: "national", Entries: es})
	importList(t, st, store.ListImport{Name: "national", Entries: es[1:]})
	rep := importList(t, st, store.ListImport{Name: "national", Entries: es})
	if rep.Added != 1 || rep.Version != 3 {
		t.Fatalf("report = %+v, want version 3 with 1 added", rep)
	}
	if got := lookup(t, st, es[0].Hash); len(got) != 1 {
		t.Fatalf("Lookup after re-adding = %d records, want 1", len(got))
	}
	if got, want := actions(history(t, st, es[0].Hash)), "national:added:1 national:removed:2 national:added:3"; got != want {
		t.Fatalf("history = %s, want %s", got, want)
	}
}

// snapshot is everything a failed import must leave as it was.
func snapshot(t *testing.T, st store.Store, hs []hashkind.Hash) string {
	t.Helper()
	var b strings.Builder
	for _, l := range lists(t, st) {
		fmt.Fprintf(&b, "list %s %s %d %d %v %s\n", l.Name, l.Version, l.Entries, l.Disabled, l.Negative, l.Imported)
		es := listEntries(t, st, l.Name)
		keys := slices.SortedFunc(maps.Keys(es), func(x, y hashkind.Hash) int { return strings.Compare(x.Hex(), y.Hex()) })
		for _, k := range keys {
			e := es[k]
			fmt.Fprintf(&b, "  %s %s %s %d\n", k.Hex(), e.Category, e.Note, e.Severity)
		}
	}
	for _, h := range hs {
		fmt.Fprintf(&b, "history %s %s\n", h.Hex(), actions(history(t, st, h)))
	}
	return b.String()
}

func testImportIsAllOrNothing(t *testing.T, st store.Store) {
	s := newSynth(7)
	es := s.entries(10)
	importList(t, st, store.ListImport{Name: "national", Entries: es})
	var hs []hashkind.Hash
	for _, e := range es {
		hs = append(hs, e.Hash)
	}
	before := snapshot(t, st, hs)

	// Changes that would land first, then an entry with no valid hash.
	next := slices.Clone(es[2:])
	next[0].Category = "changed"
	next = append(next, s.entries(5)...)
	bad := watchlist.Entry{Category: "1", Pos: watchlist.Pos{File: "synthetic.csv", Line: 99}}
	next = append(next[:6], append([]watchlist.Entry{bad}, next[6:]...)...)
	if _, err := st.ImportList(context.Background(), store.ListImport{Name: "national", Entries: next}); err == nil {
		t.Fatal("ImportList with an entry of no known kind succeeded")
	}
	if after := snapshot(t, st, hs); after != before {
		t.Fatalf("a failed import changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// The store still works after the rollback.
	if rep := importList(t, st, store.ListImport{Name: "national", Entries: es[1:]}); rep.Removed != 1 || rep.Version != 2 {
		t.Fatalf("import after a failed one: %+v, want version 2 with 1 removed", rep)
	}
}

func testFailedFirstImportCreatesNoList(t *testing.T, st store.Store) {
	s := newSynth(8)
	es := append(s.entries(3), watchlist.Entry{})
	if _, err := st.ImportList(context.Background(), store.ListImport{Name: "new", Entries: es}); err == nil {
		t.Fatal("ImportList with an entry of no known kind succeeded")
	}
	if ls := lists(t, st); len(ls) != 0 {
		t.Fatalf("Lists after a failed first import = %v, want none", ls)
	}
	if got := lookup(t, st, es[0].Hash); len(got) != 0 {
		t.Fatalf("Lookup after a failed first import = %v, want nothing", got)
	}
}

func testImportKeepsIdenticalDuplicateOnce(t *testing.T, st store.Store) {
	s := newSynth(9)
	es := s.entries(3)
	rep := importList(t, st, store.ListImport{Name: "national", Entries: append(es, es[1])})
	if rep.Added != 3 {
		t.Fatalf("added %d, want 3 (the duplicate once)", rep.Added)
	}
	if l := lists(t, st)["national"]; l.Entries != 3 {
		t.Fatalf("list has %d entries, want 3", l.Entries)
	}
}

func testImportRejectsConflictingDuplicate(t *testing.T, st store.Store) {
	s := newSynth(10)
	es := s.entries(3)
	dup := es[1]
	dup.Category = "other"
	_, err := st.ImportList(context.Background(), store.ListImport{Name: "national", Entries: append(es, dup)})
	if err == nil || !strings.Contains(err.Error(), dup.Hash.Hex()) {
		t.Fatalf("ImportList with one hash in two categories: error %v, want one naming %s", err, dup.Hash.Hex())
	}
}

func testDisableAndEnableKeepHistory(t *testing.T, st store.Store) {
	ctx := context.Background()
	s := newSynth(11)
	es := s.entries(3)
	importList(t, st, store.ListImport{Name: "national", Entries: es})
	h := es[1].Hash
	if err := st.SetDisabled(ctx, "national", h, true, "analyst-3", "benign on review"); err != nil {
		t.Fatal(err)
	}
	hs, _ := active(t, st)
	if slices.Contains(hs["national"], h) || len(hs["national"]) != 2 {
		t.Fatalf("active entries after disabling: %d (disabled one among them: %v)", len(hs["national"]), slices.Contains(hs["national"], h))
	}
	rec := lookup(t, st, h)["national"]
	if !rec.Disabled || rec.Reason != "benign on review" {
		t.Fatalf("Lookup of a disabled entry = %+v, want disabled with its reason", rec)
	}
	if l := lists(t, st)["national"]; l.Disabled != 1 || l.Entries != 3 {
		t.Fatalf("list = %+v, want 3 entries of which 1 disabled", l)
	}
	// Disabling again changes nothing.
	if err := st.SetDisabled(ctx, "national", h, true, "analyst-3", "again"); err != nil {
		t.Fatal(err)
	}
	if err := st.SetDisabled(ctx, "national", h, false, "analyst-4", "re-checked"); err != nil {
		t.Fatal(err)
	}
	hs, _ = active(t, st)
	if !slices.Contains(hs["national"], h) {
		t.Fatal("a re-enabled entry is not active")
	}
	ev := history(t, st, h)
	if got, want := actions(ev), "national:added:1 national:disabled:1 national:enabled:1"; got != want {
		t.Fatalf("history = %s, want %s", got, want)
	}
	if ev[1].By != "analyst-3" || ev[1].Reason != "benign on review" || ev[2].By != "analyst-4" || ev[2].Reason != "re-checked" {
		t.Fatalf("history = %+v, want who and why on each event", ev)
	}
	if l := lists(t, st)["national"]; l.Disabled != 0 {
		t.Fatalf("list has %d disabled after re-enabling, want 0", l.Disabled)
	}
}

func testDisabledSurvivesReimport(t *testing.T, st store.Store) {
	ctx := context.Background()
	s := newSynth(12)
	es := s.entries(4)
	importList(t, st, store.ListImport{Name: "national", Entries: es})
	h := es[2].Hash
	if err := st.SetDisabled(ctx, "national", h, true, "analyst", "false positive"); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		rec, ok := lookup(t, st, h)["national"]
		if !ok || !rec.Disabled || rec.Reason != "false positive" {
			t.Fatalf("%s: record %+v, want still disabled", when, rec)
		}
		if hs, _ := active(t, st); slices.Contains(hs["national"], h) {
			t.Fatalf("%s: the disabled entry is active", when)
		}
		if l := lists(t, st)["national"]; l.Disabled != 1 {
			t.Fatalf("%s: list has %d disabled, want 1", when, l.Disabled)
		}
	}
	if rep := importList(t, st, store.ListImport{Name: "national", Entries: es}); !rep.Unchanged {
		t.Fatalf("identical re-import: %+v", rep)
	}
	check("after an unchanged re-import")
	next := append(slices.Clone(es), s.entries(2)...)
	next[2].Note = "changed by the publisher"
	if rep := importList(t, st, store.ListImport{Name: "national", Entries: next}); rep.Changed != 1 || rep.Added != 2 {
		t.Fatalf("changed re-import: %+v", rep)
	}
	check("after a new version that changed it")
}

func testSetDisabledUnknownIsNotFound(t *testing.T, st store.Store) {
	ctx := context.Background()
	s := newSynth(13)
	es := s.entries(3)
	importList(t, st, store.ListImport{Name: "national", Entries: es})
	importList(t, st, store.ListImport{Name: "national", Entries: es[1:]})
	other := s.hash(hashkind.SHA1)
	tests := []struct {
		name, list string
		h          hashkind.Hash
		mention    []string
	}{
		{"unknown-list", "nowhere", es[1].Hash, []string{"nowhere"}},
		{"unknown-hash", "national", other, []string{"national", other.Hex()}},
		{"removed-entry", "national", es[0].Hash, []string{"national", es[0].Hash.Hex()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := st.SetDisabled(ctx, tt.list, tt.h, true, "analyst", "why")
			if !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("SetDisabled error = %v, want ErrNotFound", err)
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Fatalf("error %q does not name %q", err, m)
				}
			}
		})
	}
}

func testNegativeListIsFlagged(t *testing.T, st store.Store) {
	s := newSynth(14)
	pos, neg := s.entries(3), s.entries(2)
	shared := pos[0]
	importList(t, st, store.ListImport{Name: "national", Entries: pos})
	importList(t, st, store.ListImport{Name: "known-benign", Negative: true, Entries: append(neg, shared)})
	if l := lists(t, st); !l["known-benign"].Negative || l["national"].Negative {
		t.Fatalf("Lists negative flags: known-benign %v, national %v", l["known-benign"].Negative, l["national"].Negative)
	}
	hs, ls := active(t, st)
	if !ls["known-benign"].Negative || ls["national"].Negative || len(hs["known-benign"]) != 3 {
		t.Fatalf("ActiveEntries: lists %+v, %d benign entries", ls, len(hs["known-benign"]))
	}
	recs := lookup(t, st, shared.Hash)
	if len(recs) != 2 || !recs["known-benign"].List.Negative || recs["national"].List.Negative {
		t.Fatalf("Lookup of a hash on both = %+v", recs)
	}
}

func testListCannotChangeSides(t *testing.T, st store.Store) {
	s := newSynth(15)
	es := s.entries(3)
	importList(t, st, store.ListImport{Name: "known-benign", Negative: true, Entries: es})
	if _, err := st.ImportList(context.Background(), store.ListImport{Name: "known-benign", Entries: es}); err == nil {
		t.Fatal("re-importing a negative list as positive succeeded")
	}
	if l := lists(t, st)["known-benign"]; !l.Negative || l.Version != "1" {
		t.Fatalf("list = %+v, want still negative at version 1", l)
	}
}

func testTrustCountsOrganisationsAndOtherLists(t *testing.T, st store.Store) {
	ctx := context.Background()
	s := newSynth(16)
	h := s.full()
	importList(t, st, store.ListImport{Name: "list-a", Entries: append(s.entries(2), h)})
	importList(t, st, store.ListImport{Name: "list-b", Entries: []watchlist.Entry{h}})
	importList(t, st, store.ListImport{Name: "list-c", Entries: []watchlist.Entry{h}})
	importList(t, st, store.ListImport{Name: "benign", Negative: true, Entries: []watchlist.Entry{h}})
	for _, c := range []store.Confirmation{
		{By: "person-1", Org: "org-x", Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{By: "person-2", Org: "org-x", Note: "second look", Time: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)},
		{By: "person-3", Org: "org-y", Time: time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)},
	} {
		if err := st.Confirm(ctx, h.Hash, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetDisabled(ctx, "list-c", h.Hash, true, "analyst", "doubt"); err != nil {
		t.Fatal(err)
	}
	recs := lookup(t, st, h.Hash)
	tests := []struct {
		list string
		from []string
	}{
		// Two organisations (org-x twice counts once) and the other
		// enabled positive list; not the negative list, not the disabled entry.
		{"list-a", []string{"org-x", "org-y", "list-b"}},
		{"list-b", []string{"org-x", "org-y", "list-a"}},
	}
	for _, tt := range tests {
		tr := recs[tt.list].Trust
		got, want := slices.Sorted(slices.Values(tr.From)), slices.Sorted(slices.Values(tt.from))
		if tr.Confirmations != len(tt.from) || !slices.Equal(got, want) {
			t.Fatalf("trust on %s = %+v, want %d from %v", tt.list, tr, len(tt.from), tt.from)
		}
	}
	var confirmed int
	for _, e := range history(t, st, h.Hash) {
		if e.Action == "confirmed" {
			confirmed++
			if !strings.Contains(e.By, "person-") {
				t.Fatalf("confirmed event %+v does not say who", e)
			}
		}
	}
	if confirmed != 3 {
		t.Fatalf("history has %d confirmations, want 3", confirmed)
	}
}

func testConfirmUnknownHashIsNotFound(t *testing.T, st store.Store) {
	s := newSynth(17)
	err := st.Confirm(context.Background(), s.hash(hashkind.SHA256), store.Confirmation{By: "p", Org: "o", Time: time.Now()})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Confirm of a hash on no list: %v, want ErrNotFound", err)
	}
}

func testLookupAcrossLists(t *testing.T, st store.Store) {
	s := newSynth(18)
	h := s.full()
	onB := h
	onB.Category, onB.Note, onB.Extra = "3", "as list b has it", nil
	importList(t, st, store.ListImport{Name: "list-a", Source: "pub-a", Entries: append(s.entries(3), h)})
	importList(t, st, store.ListImport{Name: "list-b", Source: "pub-b", Entries: []watchlist.Entry{onB}})
	recs := lookup(t, st, h.Hash)
	if len(recs) != 2 {
		t.Fatalf("Lookup = %d records, want 2", len(recs))
	}
	if a := recs["list-a"]; !sameEntry(&a.Entry, &h) || a.List.Source != "pub-a" || a.List.Entries != 4 {
		t.Fatalf("record on list-a = %+v", a)
	}
	if b := recs["list-b"]; !sameEntry(&b.Entry, &onB) || b.List.Source != "pub-b" {
		t.Fatalf("record on list-b = %+v", b)
	}
	if got := lookup(t, st, s.hash(hashkind.SHA1)); len(got) != 0 {
		t.Fatalf("Lookup of an unlisted hash = %+v, want nothing", got)
	}
}

func testListEntriesUnknownListIsNotFound(t *testing.T, st store.Store) {
	err := st.ListEntries(context.Background(), "nowhere", func(*watchlist.Entry) error { return nil })
	if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "nowhere") {
		t.Fatalf("ListEntries(nowhere) = %v, want ErrNotFound naming the list", err)
	}
}

// store.AddToList creates the list, keeps what it holds, replaces an
// entry of the same hash and notes why.
func testAddToListKeepsEveryEntry(t *testing.T, st store.Store) {
	ctx := context.Background()
	s := newSynth(11)
	es := s.entries(3)
	for i, e := range es {
		rep, err := store.AddToList(ctx, st, "local-confirmed", "local", e, "analyst-1", "lead confirmed")
		if err != nil {
			t.Fatal(err)
		}
		if rep.Version != i+1 || rep.Added != 1 || rep.Removed != 0 {
			t.Fatalf("adding entry %d: %+v, want version %d with 1 added", i, rep, i+1)
		}
	}
	again := es[1]
	again.Note, again.Category = "re-graded", "9"
	if rep, err := store.AddToList(ctx, st, "local-confirmed", "local", again, "analyst-2", "why"); err != nil || rep.Changed != 1 || rep.Added+rep.Removed != 0 {
		t.Fatalf("re-adding a listed hash: %+v %v, want 1 changed", rep, err)
	}
	got := listEntries(t, st, "local-confirmed")
	if len(got) != 3 || got[es[0].Hash].Note != "lead confirmed" || got[es[1].Hash].Note != "re-graded" || got[es[1].Hash].Category != "9" {
		t.Fatalf("entries %+v, want all three, the first noted with the reason, the second replaced", got)
	}
	if l := lists(t, st)["local-confirmed"]; l.Source != "local" || l.Format != watchlist.FormatCSV || l.Version != "4" {
		t.Fatalf("list %+v, want source local, csv, version 4", l)
	}
}

// Observation returns a synthetic observation with every field filled
// (i varies the values). Benchmarks use it too.
func Observation(r *rand.Rand, at time.Time, i int) observe.Observation {
	b := func(n int) []byte {
		out := make([]byte, n)
		for j := range out {
			out[j] = byte(r.Uint32())
		}
		return out
	}
	h := hashkind.MustNew(hashkind.BTIH, b(20))
	ip := netip.AddrFrom4([4]byte{127, byte(i >> 16), byte(i >> 8), byte(i)})
	if i%5 == 0 {
		ip = netip.IPv6Loopback()
	}
	o := observe.Observation{
		ID:       observe.NewID(at),
		Sensor:   syntheticSensor(i),
		Network:  observe.NetBitTorrent,
		Method:   observe.MethodPeerProbe,
		Time:     at,
		Item:     observe.Item{Hash: h, Matched: []observe.Match{{List: "national", Category: fmt.Sprint(1 + i%3)}, {List: "partner", Category: "A"}}},
		Endpoint: observe.Endpoint{IP: ip, Port: uint16(1024 + r.IntN(60000)), Transport: "tcp", Local: syntheticLocal(i)},
		Client: observe.Client{PeerID: append([]byte("-TR3000-"), b(12)...), Name: "Transmission", Version: "3.00",
			ListenPort: uint16(1024 + r.IntN(60000)), NodeID: b(20), UserHash: b(16), GUID: b(16)},
		Possession:   observe.Possession{Level: observe.Partial, PiecesHave: r.IntN(100), PiecesTotal: 100},
		Transcript:   observe.Transcript{Bytes: b(256), Ref: fmt.Sprintf("transcripts/synthetic-%06d.bin", i), SHA256: b(32)},
		Marks:        syntheticMarks(i),
		Place:        syntheticPlace(i),
		Jurisdiction: syntheticJurisdiction(i),
	}
	// As a sensor writes it (evidence form 2 relies on it): the random
	// draw above keeps the stream of values as it was.
	sum := sha256.Sum256(o.Transcript.Bytes)
	o.Transcript.SHA256 = sum[:]
	syntheticClock(&o, i, r)
	return o
}

// syntheticSensor gives every other observation a build and a
// configuration hash, and changes the build along the way, so that a store
// that loses or shares them between rows fails.
func syntheticSensor(i int) observe.Sensor {
	s := observe.Sensor{ID: "bt-lab-1", Version: "0.1.0", Vantage: "127.0.0.1:6881"}
	if i%2 == 1 {
		s.Commit, s.Modified = fmt.Sprintf("%040x", i%7), i%3 == 0
		s.Config = fmt.Sprintf("%064x", i%5)
	}
	return s
}

// syntheticClock gives the four kinds of clock reading: unknown with no
// server, measured, unknown because the server failed, and measured at
// exactly zero (a fact, not unknown).
func syntheticClock(o *observe.Observation, i int, r *rand.Rand) {
	switch i % 4 {
	case 0:
		o.ClockSource = "none"
	case 1:
		o.ClockKnown, o.ClockSource = true, "ntp:127.0.0.1:123"
		o.ClockOffset = time.Duration(r.IntN(4_000_000)-2_000_000) * time.Nanosecond
		o.ClockUncertainty = time.Duration(1+r.IntN(900_000)) * time.Nanosecond
	case 2:
		o.ClockSource = "ntp:127.0.0.1:123 failed: no reply within 2s"
	default:
		o.ClockKnown, o.ClockUncertainty, o.ClockSource = true, 250*time.Microsecond, "ntp:[::1]:123"
	}
}

// syntheticMarks gives one observation in four no marks, and the others
// one or two, so that a store that drops or reorders them fails.
func syntheticMarks(i int) []string {
	switch i % 4 {
	case 0:
		return nil
	case 1:
		return []string{observe.MarkMalformedBitfield}
	case 2:
		return []string{observe.MarkMalformedHave, observe.MarkTranscriptCut}
	default:
		return []string{observe.MarkNodeIDUnchecked}
	}
}

// syntheticPlace places two observations in three (the third has no
// place, as when no database knows the address).
func syntheticPlace(i int) observe.Place {
	switch i % 3 {
	case 0:
		return observe.Place{}
	case 1:
		return observe.Place{Country: "FR", Subdivisions: []string{"Île-de-France", "Yvelines"}, City: "Versailles",
			Lat: 48.8049, Lon: 2.1204, ASN: 64512, Org: "Lab \"Telecom\" SA", DB: "lab-city.mmdb",
			DBBuild: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	default:
		return observe.Place{Country: "BE", ASN: 64513, Org: "Exit VPN", VPN: true, Hosting: true, DB: "lab-city.mmdb"}
	}
}

func syntheticJurisdiction(i int) observe.Jurisdiction {
	if i%3 == 0 {
		return observe.Jurisdiction{}
	}
	return observe.Jurisdiction{Agency: "fr-srpj-versailles", Rule: "subdivision FR/78 (france.yaml:12)"}
}

func insert(t *testing.T, st store.Store, obs []observe.Observation) {
	t.Helper()
	if err := st.InsertObservations(context.Background(), obs); err != nil {
		t.Fatalf("InsertObservations(%d): %v", len(obs), err)
	}
}

// Export returns every observation of st in f's range, as
// Store.Observations hands them out.
func Export(t testing.TB, st store.Store, f store.ObservationFilter) []observe.Observation {
	t.Helper()
	var out []observe.Observation
	if err := st.Observations(context.Background(), f, func(o *observe.Observation) error {
		out = append(out, *o)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

var t0 = time.Date(2026, 11, 23, 13, 34, 13, 123456789, time.UTC)

func testObservationsRoundTripEveryField(t *testing.T, st store.Store) {
	r := rand.New(rand.NewPCG(19, 19))
	full := Observation(r, t0, 1)
	sparse := observe.Observation{ // a DHT announce: pieces unknown, no client, no transcript
		ID:         observe.NewID(t0.Add(time.Second)),
		Network:    observe.NetBitTorrent,
		Method:     observe.MethodDHTAnnounce,
		Time:       t0.Add(time.Second),
		Item:       observe.Item{Hash: hashkind.MustNew(hashkind.BTIH2, make([]byte, 32))},
		Endpoint:   observe.Endpoint{IP: netip.MustParseAddr("::ffff:127.0.0.9"), Port: 6881, Transport: "udp"},
		Possession: observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1},
	}
	zeroPieces := Observation(r, t0.Add(2*time.Second), 2)
	zeroPieces.Possession = observe.Possession{Level: observe.Acknowledged, PiecesHave: 0, PiecesTotal: 7}
	zeroPieces.Client.Name = "name with \"quotes\", \\ and é"
	zeroPieces.Item.Matched = []observe.Match{{List: "list \"q\"\n", Category: "\x01"}}
	zeroPieces.Endpoint.IP = netip.MustParseAddr("fe80::1%lo")
	want := []observe.Observation{full, sparse, zeroPieces}
	insert(t, st, slices.Clone(want))
	got := Export(t, st, store.ObservationFilter{})
	if len(got) != len(want) {
		t.Fatalf("exported %d observations, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].Equal(&want[i]) {
			t.Fatalf("observation %d:\ngot  %+v\nwant %+v", i, got[i], want[i])
		}
		if got[i].Time.Location() != time.UTC {
			t.Fatalf("observation %d time in %v, want UTC", i, got[i].Time.Location())
		}
	}
}

func testObservationsComeInTimeOrder(t *testing.T, st store.Store) {
	r := rand.New(rand.NewPCG(20, 20))
	var obs []observe.Observation
	for _, sec := range []int{5, 1, 4, 2, 3} {
		obs = append(obs, Observation(r, t0.Add(time.Duration(sec)*time.Second), sec))
	}
	insert(t, st, obs[:2])
	insert(t, st, obs[2:])
	got := Export(t, st, store.ObservationFilter{})
	for i := 1; i < len(got); i++ {
		if got[i].Time.Before(got[i-1].Time) {
			t.Fatalf("observation %d at %v comes after one at %v", i, got[i].Time, got[i-1].Time)
		}
	}
	if len(got) != 5 {
		t.Fatalf("exported %d, want 5", len(got))
	}
}

// ObservationsOfAddress gives the observations of exactly the addresses
// asked (an IPv4 address and its IPv4-mapped form apart, an address with
// a zone never), in the half-open time range, in time order, with every
// field.
func testObservationsOfAddressExactly(t *testing.T, st store.Store) {
	r := rand.New(rand.NewPCG(23, 23))
	v4 := netip.MustParseAddr("127.9.8.7")
	v6 := netip.MustParseAddr("2001:db8::7")
	at := func(i int, ip netip.Addr, d time.Duration) observe.Observation {
		o := Observation(r, t0.Add(d), i+1)
		o.Endpoint.IP = ip
		return o
	}
	obs := []observe.Observation{
		at(0, v4, 0),
		at(1, netip.AddrFrom16(v4.As16()), time.Minute), // the mapped form: another address
		at(2, v6, 2*time.Minute),
		at(3, v4, time.Hour),
		at(4, netip.MustParseAddr("127.9.8.6"), 3*time.Minute),
		at(5, netip.MustParseAddr("fe80::1%eth0"), 4*time.Minute),
		at(6, v4, 2*time.Hour),
	}
	insert(t, st, obs)
	ask := func(addrs []netip.Addr, since, until time.Time) []observe.Observation {
		t.Helper()
		var got []observe.Observation
		if err := st.ObservationsOfAddress(context.Background(), addrs, since, until, func(o *observe.Observation) error {
			got = append(got, *o)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	tests := []struct {
		name         string
		addrs        []netip.Addr
		since, until time.Duration
		want         []int
	}{
		{"ipv4", []netip.Addr{v4}, -time.Hour, 3 * time.Hour, []int{0, 3, 6}},
		{"ipv4-until-exclusive", []netip.Addr{v4}, 0, 2 * time.Hour, []int{0, 3}},
		{"ipv4-since-inclusive", []netip.Addr{v4}, time.Hour, 3 * time.Hour, []int{3, 6}},
		{"ipv4-and-mapped", []netip.Addr{v4, netip.AddrFrom16(v4.As16())}, 0, 90 * time.Minute, []int{0, 1, 3}},
		{"ipv6", []netip.Addr{v6}, 0, time.Hour, []int{2}},
		{"zone-never", []netip.Addr{netip.MustParseAddr("fe80::1")}, 0, time.Hour, nil},
		{"neighbour-never", []netip.Addr{netip.MustParseAddr("127.9.8.8")}, 0, 3 * time.Hour, nil},
		{"empty-range", []netip.Addr{v4}, time.Minute, time.Minute, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ask(tt.addrs, t0.Add(tt.since), t0.Add(tt.until))
			if len(got) != len(tt.want) {
				t.Fatalf("%d observations, want %d (%v)", len(got), len(tt.want), tt.want)
			}
			for i, j := range tt.want {
				if !got[i].Equal(&obs[j]) {
					t.Fatalf("observation %d = %s at %s, want %s", i, got[i].ID, got[i].Time, obs[j].ID)
				}
			}
		})
	}
}

func testObservationsFilterSinceUntil(t *testing.T, st store.Store) {
	r := rand.New(rand.NewPCG(21, 21))
	var obs []observe.Observation
	for i := 0; i < 10; i++ {
		obs = append(obs, Observation(r, t0.Add(time.Duration(i)*time.Minute), i))
	}
	insert(t, st, obs)
	tests := []struct {
		name       string
		f          store.ObservationFilter
		first, num int
	}{
		{"all", store.ObservationFilter{}, 0, 10},
		{"since-inclusive", store.ObservationFilter{Since: t0.Add(3 * time.Minute)}, 3, 7},
		{"since-between", store.ObservationFilter{Since: t0.Add(3*time.Minute + time.Nanosecond)}, 4, 6},
		{"until-exclusive", store.ObservationFilter{Until: t0.Add(3 * time.Minute)}, 0, 3},
		{"window", store.ObservationFilter{Since: t0.Add(2 * time.Minute), Until: t0.Add(5 * time.Minute)}, 2, 3},
		{"since-other-zone", store.ObservationFilter{Since: t0.Add(8 * time.Minute).In(time.FixedZone("CET", 3600))}, 8, 2},
		{"empty", store.ObservationFilter{Since: t0.Add(time.Hour)}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Export(t, st, tt.f)
			if len(got) != tt.num {
				t.Fatalf("%d observations, want %d", len(got), tt.num)
			}
			for i := range got {
				if !got[i].Equal(&obs[tt.first+i]) {
					t.Fatalf("observation %d = %s, want %s", i, got[i].ID, obs[tt.first+i].ID)
				}
			}
		})
	}
}

func testInsertObservationsManyAcrossChunks(t *testing.T, st store.Store) {
	r := rand.New(rand.NewPCG(22, 22))
	// Sizes that straddle any chunking a backend may do.
	var all []observe.Observation
	n := 0
	for _, size := range []int{1, 2, 3, 7, 255, 256, 257, 1000, 1337} {
		batch := make([]observe.Observation, size)
		for i := range batch {
			batch[i] = Observation(r, t0.Add(time.Duration(n)*time.Millisecond), n)
			n++
		}
		insert(t, st, batch)
		all = append(all, batch...)
	}
	got := Export(t, st, store.ObservationFilter{})
	if len(got) != len(all) {
		t.Fatalf("exported %d observations, want %d", len(got), len(all))
	}
	for i := range all {
		if !got[i].Equal(&all[i]) {
			t.Fatalf("observation %d differs:\ngot  %+v\nwant %+v", i, got[i], all[i])
		}
	}
}

func testInsertObservationsAssignsMissingID(t *testing.T, st store.Store) {
	r := rand.New(rand.NewPCG(23, 23))
	obs := []observe.Observation{Observation(r, t0, 0), Observation(r, t0, 1)}
	obs[0].ID, obs[1].ID = "", ""
	insert(t, st, obs)
	if obs[0].ID == "" || obs[1].ID == "" || obs[0].ID == obs[1].ID {
		t.Fatalf("ids after insert: %q %q, want two distinct ids", obs[0].ID, obs[1].ID)
	}
	got := Export(t, st, store.ObservationFilter{})
	if len(got) != 2 || got[0].ID != obs[0].ID || got[1].ID != obs[1].ID {
		t.Fatalf("exported %+v, want the assigned ids", got)
	}
}

func testInsertObservationsSkipsStoredID(t *testing.T, st store.Store) {
	r := rand.New(rand.NewPCG(24, 24))
	obs := []observe.Observation{Observation(r, t0, 0), Observation(r, t0.Add(time.Second), 1)}
	insert(t, st, obs[:1])
	// A redelivered batch: the first again, and a new one.
	insert(t, st, obs)
	if got := Export(t, st, store.ObservationFilter{}); len(got) != 2 {
		t.Fatalf("exported %d observations after a redelivery, want 2", len(got))
	}
}

func testInsertObservationsIsAllOrNothing(t *testing.T, st store.Store) {
	r := rand.New(rand.NewPCG(25, 25))
	obs := make([]observe.Observation, 600)
	for i := range obs {
		obs[i] = Observation(r, t0.Add(time.Duration(i)*time.Second), i)
	}
	obs[400].Possession.Level = observe.LevelUnknown
	err := st.InsertObservations(context.Background(), obs)
	if !errors.Is(err, observe.ErrInvalid) || !strings.Contains(err.Error(), obs[400].ID) {
		t.Fatalf("InsertObservations with an unknown level: %v, want ErrInvalid naming %s", err, obs[400].ID)
	}
	if got := Export(t, st, store.ObservationFilter{}); len(got) != 0 {
		t.Fatalf("%d observations stored from a failed batch, want 0", len(got))
	}
}

// A store is shared by ingest, the web UI and the CLI at once: concurrent
// writers and readers must neither fail with a lock error nor lose rows.
func testConcurrentWritersAndReaders(t *testing.T, st store.Store) {
	ctx := context.Background()
	const writers, batches, per = 3, 10, 50
	errs := make(chan error, writers+2)
	for w := 0; w < writers; w++ {
		go func() {
			r := rand.New(rand.NewPCG(uint64(w), 26))
			for b := 0; b < batches; b++ {
				obs := make([]observe.Observation, per)
				for i := range obs {
					obs[i] = Observation(r, t0.Add(time.Duration(w*batches*per+b*per+i)*time.Millisecond), i)
				}
				if err := st.InsertObservations(ctx, obs); err != nil {
					errs <- fmt.Errorf("writer %d batch %d: %w", w, b, err)
					return
				}
			}
			errs <- nil
		}()
	}
	go func() {
		s := newSynth(27)
		for v := 0; v < 5; v++ {
			if _, err := st.ImportList(ctx, store.ListImport{Name: "national", Entries: s.entries(20)}); err != nil {
				errs <- fmt.Errorf("import %d: %w", v, err)
				return
			}
		}
		errs <- nil
	}()
	go func() {
		for i := 0; i < 10; i++ {
			if err := st.Observations(ctx, store.ObservationFilter{}, func(*observe.Observation) error { return nil }); err != nil {
				errs <- fmt.Errorf("reader: %w", err)
				return
			}
			if _, err := st.Lists(ctx); err != nil {
				errs <- fmt.Errorf("reader: %w", err)
				return
			}
		}
		errs <- nil
	}()
	for i := 0; i < writers+2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := Export(t, st, store.ObservationFilter{}); len(got) != writers*batches*per {
		t.Fatalf("stored %d observations, want %d", len(got), writers*batches*per)
	}
}

// syntheticLocal gives every other observation the sensor's side of the
// conversation (the others were named by a third party).
func syntheticLocal(i int) netip.AddrPort {
	if i%2 == 0 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(30000+i%30000))
}
