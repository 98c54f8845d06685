// Package webviews is what Vigil's pages read from a store beyond the
// analysis's own answers (analysis.Views): the Store interface the web
// layer (internal/web and internal/web/pages) depends on, and the shapes of its answers, such
// as the overview's figures and a list's versions. A store implements it
// (the SQLite and the PostgreSQL store both do); the web
// layer names no store.
//
// Stores import this package, so it must never import HTTP, a store or
// anything that does I/O: it is types and one interface, and the rule
// (WithholdLinkEnds, over that interface) that keeps another target's
// endpoints out of a target's links for a viewer who may not see it.
package webviews

import (
	"context"
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
)

// Store answers the pages' questions. Every read of targets takes the
// viewer's scope and applies it where the data is: a target outside the
// scope is answered exactly as a missing one.
type Store interface {
	// Overview returns the overview page's figures within scope, over the
	// live targets last seen since a time (the page asks for a UTC
	// midnight).
	Overview(ctx context.Context, scope analysis.Scope, since time.Time) (*Overview, error)
	// CountTargets returns how many live targets are in scope.
	CountTargets(ctx context.Context, scope analysis.Scope) (int, error)
	// WebTargets is analysis.Views' Targets for the list page: the same
	// filters, scope and orders, but rows carry the summary without
	// Parts, Levels, Categories, Flags and Agencies, and the total is
	// counted only when count is true (-1 otherwise).
	WebTargets(ctx context.Context, q analysis.TargetQuery, count bool) ([]analysis.TargetSummary, int, error)
	// SearchTargets returns the live targets in scope that search names:
	// a target id (a merged one leads to its survivor), an address ("ip"
	// or "ip:port") one of its endpoints had, or the hex digest of a
	// watched file it was seen with. At most limit (0: 50), by score.
	SearchTargets(ctx context.Context, search string, scope analysis.Scope, limit int) ([]analysis.TargetSummary, error)
	// RecentObservations returns up to limit of the newest observations
	// in scope now, newest first, reading at most window of the newest
	// observations (0: 5000): a reader whose agencies see little may get
	// fewer than limit. Transcripts are not read.
	RecentObservations(ctx context.Context, scope analysis.Scope, limit, window int) ([]RecentObservation, error)
	// PlacePoints returns, for each country and (country, subdivision)
	// among the newest window observations (0: 20000), the coordinates of
	// the newest one placed there with coordinates.
	PlacePoints(ctx context.Context, window int) ([]PlacePoint, error)
	// EndpointTargetsAt returns, for each IP:port at an instant (eps[i]
	// at at[i]), the target of the endpoint it was then, or "" when none:
	// an IP:port seen again after a silence longer than window (the
	// analysis's endpoint window; 0: its default) is another subscriber's
	// endpoint, and an observation is never given another one's target.
	EndpointTargetsAt(ctx context.Context, eps []netip.AddrPort, at []time.Time, window time.Duration) ([]string, error)
	// VisibleTargets returns which of the target ids scope may see now:
	// those routed or assigned to one of its agencies or shared with one.
	// An all-agencies scope sees every live target. Merged and unknown ids
	// are not visible.
	VisibleTargets(ctx context.Context, scope analysis.Scope, ids []string) (map[string]bool, error)
	// TargetAccess returns, for each of the live target ids, the agencies
	// that may see it now (routed or assigned, and shared with): who a
	// live event of the target is for.
	TargetAccess(ctx context.Context, ids []string) (map[string][]string, error)
	// EntryNames returns the name the current entries of the lists give
	// each hash (the first by list name among those that name it). Hashes
	// no list names are absent.
	EntryNames(ctx context.Context, hs []hashkind.Hash) (map[hashkind.Hash]string, error)
	// ListVersions returns the versions of list name, newest first;
	// store.ErrNotFound if there is no such list.
	ListVersions(ctx context.Context, name string) ([]ListVersion, error)
	// DiffListVersions returns what changed in list name from version from
	// to version to (0 <= from < to; from 0 is the empty list before the
	// first import), at most max entries of each kind (0: 200). A hash
	// added and removed again in between is not listed. store.ErrNotFound
	// for an unknown list or version.
	DiffListVersions(ctx context.Context, name string, from, to, max int) (ListDiff, error)
}

// Overview is the overview page's figures within a scope, over the live
// targets last seen since a time.
type Overview struct {
	Targets      int                   // last seen since
	Devices      int                   // of those, with more than one endpoint
	ByAgency     map[string]int        // targets by the agency they are routed to
	ByNetwork    map[string]int        // targets by network
	ByLevel      map[observe.Level]int // targets by their highest level
	Places       []PlaceStat           // by latest place
	NewByDay     map[int64]int         // targets first seen on each UTC day (days since the epoch)
	Observations map[int64]int         // observations routed into scope per UTC day since
}

// PlaceStat counts the targets whose latest place is one (country,
// subdivision), and all their observations.
type PlaceStat struct {
	Country      string
	Subdivision  string
	Targets      int
	Observations int
}

// RecentObservation is a stored observation as a live page lists it, with
// the target its endpoint belongs to ("" if none yet).
type RecentObservation struct {
	observe.Observation
	Target string
}

// PlacePoint is where a place was drawn from: the coordinates the geo
// database gave one address placed there.
type PlacePoint struct {
	Country     string
	Subdivision string // "" for the country itself
	Lat, Lon    float64
}

// ListVersion is one stored import of a list.
type ListVersion struct {
	Number   int
	Label    string // the publisher's label, or the number
	Imported time.Time
	By       string
	SHA256   string
	Format   string
	Entries  int
	Added    int
	Removed  int
	Changed  int
}

// ListChange is one hash that differs between two versions of a list.
type ListChange struct {
	Hash     hashkind.Hash
	Category string // the entry's category as stored now
	Was      string // for a change: what the history says changed
}

// ListDiff is what changed in a list from one version to another.
type ListDiff struct {
	From, To                int
	Added, Removed, Changed []ListChange
	Truncated               bool // more than max changes of some kind
}
