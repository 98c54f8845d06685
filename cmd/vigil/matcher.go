package main

import (
	"context"

	"github.com/vigil-oss/vigil/internal/match"
	"github.com/vigil-oss/vigil/internal/store"
)

// buildMatcher builds the in-memory matcher over every enabled entry of
// every list in the store (match.Load).
func buildMatcher(ctx context.Context, st store.Store) (*match.Matcher, error) {
	return match.Load(ctx, st)
}
