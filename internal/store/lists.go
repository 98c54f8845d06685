package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigil-oss/vigil/internal/watchlist"
)

// AddToList adds one entry to a (local) list of st, keeping every entry it
// already has: a new version of the list with one more entry, or the entry
// replaced if the list held its hash. It is what a confirmed lead calls
// (analysis.Config.OnLeadConfirmed); the list is created if need be. The
// entry's note is reason when it has none.
func AddToList(ctx context.Context, st Store, list, source string, e watchlist.Entry, by, reason string) (ImportReport, error) {
	var entries []watchlist.Entry
	err := st.ListEntries(ctx, list, func(x *watchlist.Entry) error {
		if x.Hash != e.Hash {
			entries = append(entries, *x)
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return ImportReport{}, fmt.Errorf("list %s: %w", list, err)
	}
	if e.Note == "" {
		e.Note = reason
	}
	entries = append(entries, e)
	return st.ImportList(ctx, ListImport{Name: list, Source: source, Format: watchlist.FormatCSV, By: by, Entries: entries})
}
