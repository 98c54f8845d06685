package pages

import (
	"context"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/casework"
	"github.com/vigil-oss/vigil/internal/figures"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/webviews"
)

// Store is what the pages read and write through a store, and all they
// know of it: the pages' views, a target with its timeline, the
// watch-lists (the lists page imports them) and the audit trail (the
// audit page). The SQLite and the PostgreSQL store both implement it.
type Store interface {
	store.Store
	webviews.Store
	audit.Store
	// TargetWithTimeline returns a live target in scope with up to limit
	// of its newest timeline entries, or analysis.ErrNotFound
	// (analysis.Views).
	TargetWithTimeline(ctx context.Context, id string, scope analysis.Scope, limit int) (*analysis.TargetDetail, error)
	// TargetAgencies returns the routing agency and the shares of a live
	// target (resolving merged ids), or analysis.ErrNotFound.
	TargetAgencies(ctx context.Context, id string) (string, []string, error)
	// ClaimOf returns the claim on a target, or nil (casework.Store).
	ClaimOf(ctx context.Context, target string) (*casework.Claim, error)
	// Proposals returns the hand-off proposals in state ("" all), oldest
	// first (casework.ProposalStore).
	Proposals(ctx context.Context, state string) ([]casework.Proposal, error)
	// The office's figures (the figures page): figures.Compute reads them.
	figures.Store
}

// BackendConfig is what the pages' answers over a store are built from.
type BackendConfig struct {
	Store Store
	// EndpointWindow is the analysis's endpoint window
	// (analysis.Config.EndpointWindow; 0: its default): the overview's
	// rows are shown under the target of their IP:port's generation at
	// their time, and after a longer silence under none.
	EndpointWindow time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// OverviewTTL is how long an overview answer is reused for the same
	// scope (0: 10 s; negative: never). Its rows are decided again for
	// the viewer each time (overviewnow.go).
	OverviewTTL time.Duration
}

// Backend answers the pages' questions from a store: Targets, Lists and
// Audit for Config. Every read passes the viewer's scope to the store.
type Backend struct {
	targets *storeTargets
	lists   storeLists
	audit   storeAudit
	places  *placeCache
}

// NewBackend returns the pages' answers over cfg.Store, with the place
// coordinates read once. ctx bounds the answers' caches.
func NewBackend(ctx context.Context, cfg BackendConfig) (*Backend, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OverviewTTL == 0 {
		cfg.OverviewTTL = 10 * time.Second
	}
	places := newPlaceCache(cfg.Store)
	if err := places.refresh(ctx, true); err != nil {
		return nil, err
	}
	tg := &storeTargets{st: cfg.Store, window: cfg.EndpointWindow, places: places, now: cfg.Now, ovTTL: max(cfg.OverviewTTL, 0),
		overviews: newMemo(ctx, max(cfg.OverviewTTL, time.Second), 1000), counts: newMemo(ctx, 10*time.Second, 10000)}
	return &Backend{targets: tg, lists: storeLists{st: cfg.Store}, audit: storeAudit{store: cfg.Store}, places: places}, nil
}

// Targets answers the target pages.
func (b *Backend) Targets() Targets { return b.targets }

// Figures answers the figures page (figures.Compute over the store, for
// a national scope only).
func (b *Backend) Figures() Figures { return storeFigures{st: b.targets.st} }

// Lists answers the watch-list pages.
func (b *Backend) Lists() Lists { return b.lists }

// Audit answers the audit page.
func (b *Backend) Audit() Audit { return b.audit }

// Detail reads a target for u with up to limit timeline entries: an
// error wrapping ErrDenied for a target outside u's scope, ErrNotFound
// for a missing one (the ISP request reads it so).
func (b *Backend) Detail(ctx context.Context, u *User, id string, limit int) (*analysis.TargetDetail, error) {
	return b.targets.detail(ctx, u, id, limit)
}

// Learn keeps where o was placed, for the maps (live batches pass here).
func (b *Backend) Learn(o *observe.Observation) { b.places.learnFrom(o) }

// RefreshPlaces reads the place coordinates again every period while a
// place is missing, until ctx ends; onErr hears of a failed read.
func (b *Backend) RefreshPlaces(ctx context.Context, period time.Duration, onErr func(error)) {
	b.places.run(ctx, period, onErr)
}
