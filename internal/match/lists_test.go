package match

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

// fakeEntries hands out its entries in order, as a store's ActiveEntries
// does.
type fakeEntries []struct {
	list *watchlist.List
	e    watchlist.Entry
}

func (f fakeEntries) ActiveEntries(ctx context.Context, fn func(*watchlist.List, *watchlist.Entry) error) error {
	for i := range f {
		if err := fn(f[i].list, &f[i].e); err != nil {
			return err
		}
	}
	return nil
}

func TestWatchSetLeavesOutWhatABenignListHolds(t *testing.T) {
	watched := &watchlist.List{Name: "synthetic-watch"}
	other := &watchlist.List{Name: "synthetic-other"}
	known := &watchlist.List{Name: "synthetic-benign", Negative: true}
	v1a, v1b := digestOf(hashkind.BTIH, 1, 1), digestOf(hashkind.BTIH, 2, 2)
	v2 := digestOf(hashkind.BTIH2, 3, 3)
	file := digestOf(hashkind.SHA1, 4, 4)
	src := fakeEntries{
		{watched, watchlist.Entry{Hash: v1a, Category: "1"}},
		{watched, watchlist.Entry{Hash: v1b, Category: "1"}},
		{watched, watchlist.Entry{Hash: file, Category: "1"}}, // not a kind asked for
		{other, watchlist.Entry{Hash: v2, Category: "2"}},
		{other, watchlist.Entry{Hash: v1a, Category: "2"}},
		// The benign list comes after the watch-list that names v1b: it
		// still wins.
		{known, watchlist.Entry{Hash: v1b}},
	}
	got, err := WatchSet(context.Background(), src, hashkind.BTIH, hashkind.BTIH2)
	if err != nil {
		t.Fatal(err)
	}
	var hashes []hashkind.Hash
	for _, w := range got {
		hashes = append(hashes, w.Hash)
	}
	if want := []hashkind.Hash{v1a, v2}; !slices.Equal(hashes, want) {
		t.Fatalf("watch set %v, want %v (v1b is on the benign list, the sha1 is not a kind asked for)", hashes, want)
	}
	want := []Source{{List: "synthetic-watch", Category: "1"}, {List: "synthetic-other", Category: "2"}}
	if !slices.Equal(got[0].Sources, want) {
		t.Fatalf("sources of %s: %+v, want %+v", v1a, got[0].Sources, want)
	}
}

func TestWatchSetAndLoadReportTheStoresError(t *testing.T) {
	boom := errors.New("disk gone")
	src := failingEntries{boom}
	if _, err := WatchSet(context.Background(), src, hashkind.BTIH); !errors.Is(err, boom) {
		t.Fatalf("WatchSet: %v, want %v", err, boom)
	}
	if _, err := Load(context.Background(), src); !errors.Is(err, boom) {
		t.Fatalf("Load: %v, want %v", err, boom)
	}
}

type failingEntries struct{ err error }

func (f failingEntries) ActiveEntries(context.Context, func(*watchlist.List, *watchlist.Entry) error) error {
	return f.err
}

func TestLoadKeepsBenignListsToSuppress(t *testing.T) {
	h := digestOf(hashkind.SHA1, 7, 7)
	src := fakeEntries{
		{&watchlist.List{Name: "synthetic-watch"}, watchlist.Entry{Hash: h, Category: "1", Severity: 4}},
		{&watchlist.List{Name: "synthetic-benign", Negative: true}, watchlist.Entry{Hash: h}},
	}
	m, err := Load(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	r := m.Match(h)
	if len(r.Matches) != 1 || !r.Suppressed || r.Alert() {
		t.Fatalf("Match = %+v: want one match, suppressed by the benign list", r)
	}
}
