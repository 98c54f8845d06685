package main

import (
	"context"
	"fmt"

	"github.com/vigil-oss/vigil/internal/match"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

// buildMatcher builds the in-memory matcher over every enabled entry of
// every list in the store, negative lists included (they suppress).
func buildMatcher(ctx context.Context, st store.Store) (*match.Matcher, error) {
	var b match.Builder
	err := st.ActiveEntries(ctx, func(l *watchlist.List, e *watchlist.Entry) error {
		return b.Add(e.Hash, match.Source{List: l.Name, Negative: l.Negative, Category: e.Category, Severity: e.Severity})
	})
	if err != nil {
		return nil, fmt.Errorf("building the matcher: %w", err)
	}
	return b.Build(), nil
}
