package match

import (
	"context"
	"fmt"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

// Entries is the watch-list store as matching reads it: every current,
// enabled entry of every list (store.Store.ActiveEntries).
type Entries interface {
	ActiveEntries(ctx context.Context, fn func(list *watchlist.List, e *watchlist.Entry) error) error
}

// Load builds a Matcher over every enabled entry of every list in src,
// negative lists included: their hashes suppress the others' matches.
func Load(ctx context.Context, src Entries) (*Matcher, error) {
	var b Builder
	err := src.ActiveEntries(ctx, func(l *watchlist.List, e *watchlist.Entry) error {
		return b.Add(e.Hash, Source{List: l.Name, Negative: l.Negative, Category: e.Category, Severity: e.Severity})
	})
	if err != nil {
		return nil, fmt.Errorf("building the matcher: %w", err)
	}
	return b.Build(), nil
}

// Watch is one hash a sensor looks for, with the entries of the
// watch-lists that name it.
type Watch struct {
	Hash    hashkind.Hash
	Sources []Source // positive lists only, in the order src gave them
}

// WatchSet returns the hashes of the given kinds that a sensor must look
// for: each hash an enabled entry of a watch-list names, unless a
// known-benign (negative) list holds it too. The benign list wins whatever
// the order of the lists: a hash on it is never looked for, as it would
// never alert. Hashes come in the order src first gives them.
func WatchSet(ctx context.Context, src Entries, kinds ...hashkind.Kind) ([]Watch, error) {
	want := map[hashkind.Kind]bool{}
	for _, k := range kinds {
		want[k] = true
	}
	byHash := map[hashkind.Hash]int{}
	benign := map[hashkind.Hash]bool{}
	var all []Watch
	err := src.ActiveEntries(ctx, func(l *watchlist.List, e *watchlist.Entry) error {
		if !want[e.Hash.Kind()] {
			return nil
		}
		if l.Negative {
			benign[e.Hash] = true
			return nil
		}
		i, ok := byHash[e.Hash]
		if !ok {
			i = len(all)
			byHash[e.Hash] = i
			all = append(all, Watch{Hash: e.Hash})
		}
		all[i].Sources = append(all[i].Sources, Source{List: l.Name, Category: e.Category, Severity: e.Severity})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the watch-lists: %w", err)
	}
	out := all[:0]
	for _, w := range all {
		if !benign[w.Hash] {
			out = append(out, w)
		}
	}
	return out, nil
}
